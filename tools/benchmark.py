"""Benchmarks of the systems: `python -m tools.benchmark NAME [options]`, NAME one of BENCHMARKS.

Each benchmark is its own module with `main(argv)` and prints `name value unit` lines; this
module picks one, so running one never imports the other's dependencies, and holds the few
helpers they share to measure and print (it imports nothing heavy itself).
"""
from __future__ import annotations

import importlib
import resource
import sys
from typing import Callable

BENCHMARKS = {
    "autoencoder": "tools.benchmark_autoencoder",
    "beats": "tools.benchmark_beats",
    "beats_training": "tools.benchmark_beats_training",
    "auxiliary": "tools.benchmark_auxiliary",
}


def report(name: str, value: float, unit: str) -> None:
    """One figure as a `name value unit` line, flushed so a killed run keeps what it measured."""
    print(f"{name} {value:.4g} {unit}", flush=True)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_sync(device) -> Callable[[], None]:
    """What waits for `device` (a torch.device) to finish queued work: timings must include it."""
    import torch  # here: choosing a benchmark must not load torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        print(f"usage: python -m tools.benchmark {{{names}}} [options]  (NAME -h for the options)", file=sys.stderr)
        if argv and argv[0] not in ("-h", "--help"):
            print(f"unknown benchmark {argv[0]!r}; valid: {names}", file=sys.stderr)
            return 2
        return 0 if argv else 2
    status = importlib.import_module(BENCHMARKS[argv[0]]).main(argv[1:])
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())
