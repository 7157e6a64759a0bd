"""Process-wide set-up done once in each entry point's `main()`: logging, seeds, device.

torch is imported inside the functions that need it, so the data tools (download, labelling)
can share the logging set-up without paying torch's start-up time.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("runtime")


def setup_logging(log_file: Path | None = None, level: str = "INFO") -> None:
    """Log to the console and, if given, to `log_file` (appending, so reruns keep history)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)


def seed_everything(seed: int, device: torch.device | None = None) -> None:
    """Seed Python, NumPy and PyTorch; on CUDA also ask PyTorch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if device is not None and device.type == "cuda":
        # The CPU kernels we use are deterministic already, and the switch costs seconds of imports
        # (it loads torch's compiler stack) in every process.
        torch.use_deterministic_algorithms(True, warn_only=True)


@contextlib.contextmanager
def limit_threads(n: int, torch_too: bool = True) -> Iterator[None]:
    """Run a block with `n` CPU threads for NumPy's BLAS and, if `torch_too`, for PyTorch
    (0: leave both as they are), restoring the previous settings afterwards."""
    import torch
    from threadpoolctl import threadpool_limits

    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    if torch_too:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def pick_device(spec: str) -> torch.device:
    """`auto` -> the first CUDA device when present, else the CPU; otherwise the named device.

    Raises:
        SystemExit: (status 1, after logging one line that says what to use instead) `spec` names a
            CUDA device this machine does not have. Every entry point chooses its device here, so
            each refuses that setting the same way, without a traceback.
    """
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            found = f"this machine's CUDA devices are {', '.join(f'cuda:{i}' for i in range(count))}"
            log.error(
                "run.device %s: %s: use --device cpu, or --device auto (the GPU when there is one)",
                spec,
                found if count else "no CUDA device is available on this machine (PyTorch finds none)",
            )
            raise SystemExit(1)
    return device


def distributed_rank_and_size() -> tuple[int, int]:
    """(rank, world size) of this process in a torchrun job; (0, 1) outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision in `dtype` on `device` for a block; plain float32 when `dtype` is None."""
    import torch

    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)
