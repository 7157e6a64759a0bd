"""What the benchmarks share to measure and print; each benchmark is a module of this package with its
own invocation (`python -m benchmarks.autoencoder`, `benchmarks.beats`, `benchmarks.beats_training`).

Every benchmark prints `name value unit` lines on stdout and logs through `core.runtime.setup_logging`.
Nothing heavy is imported here.
"""

from __future__ import annotations

import resource
from collections.abc import Callable


def report(name: str, value: float, unit: str) -> None:
    """One figure as a `name value unit` line, flushed so a killed run keeps what it measured."""
    print(f"{name} {value:.4g} {unit}", flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_sync(device) -> Callable[[], None]:
    """What waits for `device` (a torch.device) to finish queued work: timings must include it."""
    import torch  # here: a benchmark that does not use torch must not load it

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
