"""Print what decides floating-point results here, so that a failure on another machine can be read.

    python -m tools.machine_info

Reads /proc/cpuinfo, PyTorch's build configuration and threadpoolctl's view of the BLAS libraries,
and runs one small bf16 convolution and matrix product in a child process with oneDNN's and MKL's
verbose output switched on, to see which kernels they dispatch to. Prints `name: value` lines:
CPU model, the instruction-set flags that select kernels, PyTorch's CPU capability, oneDNN's ISA
and kernels, MKL's, numpy's and scipy's BLAS, and any environment variable that overrides them.
Writes nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

# The flags that change which kernels oneDNN, MKL, OpenBLAS and ATen pick (and how they round).
FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
KERNEL_ENV = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_CBWR",
    "OPENBLAS_CORETYPE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
)
# The shapes that matter most: BEATs' positional convolution (grouped, 128 taps) and a projection.
PROBE = """
import torch
x, w = torch.randn(1, 768, 64), torch.randn(768, 48, 128)
with torch.autocast("cpu", dtype=torch.bfloat16):
    torch.nn.functional.conv1d(x, w, padding=64, groups=16)
    torch.nn.functional.linear(torch.randn(64, 256), torch.randn(256, 256))
torch.randn(64, 256) @ torch.randn(256, 256)
"""


def cpu_lines(cpuinfo: Path = Path("/proc/cpuinfo")) -> list[str]:
    """CPU model and which of FLAGS it has."""
    fields: dict[str, str] = {}
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first processor's entry
    flags = set(fields.get("flags", "").split())
    return [
        f"cpu: {fields.get('model name', 'unknown (no /proc/cpuinfo)')}, {os.cpu_count()} logical CPUs",
        f"cpu flags: {' '.join(f for f in FLAGS if f in flags) or 'none'}; "
        f"absent: {' '.join(f for f in FLAGS if f not in flags) or 'none'}",
    ]


def torch_lines() -> list[str]:
    import torch

    wanted = ("CPU capability", "MKL-DNN", "Math Kernel Library", "OpenMP")
    build = [line.strip(" -") for line in torch.__config__.show().splitlines() if any(w in line for w in wanted)]
    return [
        f"torch: {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"mkldnn (oneDNN) {'available' if torch.backends.mkldnn.is_available() else 'unavailable'}, "
        f"MKL {'available' if torch.backends.mkl.is_available() else 'unavailable'}, "
        f"{torch.get_num_threads()} threads"
    ] + [f"torch build: {line}" for line in build]


def kernel_lines() -> list[str]:
    """oneDNN's ISA and the kernels it and MKL run for the probe (from their verbose output)."""
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "MKL_VERBOSE": "1"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300).stdout
    isa, kernels, mkl = [], [], []
    for line in out.splitlines():
        fields = line.split(",")
        if line.startswith("onednn_verbose") and "isa:" in line:
            isa.append(f"oneDNN ISA: {line.split('isa:', 1)[1]}")
        elif line.startswith("onednn_verbose") and "exec" in fields and fields[5] in ("convolution", "matmul"):
            kernels.append(f"oneDNN bf16 {fields[5]}: {fields[6]} ({fields[-2]})")
        elif line.startswith("MKL_VERBOSE") and "SGEMM" not in line:
            mkl.append(f"MKL: {line.removeprefix('MKL_VERBOSE ')}")
    if not kernels:
        kernels = ["oneDNN bf16 convolution/matmul: not used here (PyTorch's own kernels run them)"]
    return isa + kernels + (mkl or ["MKL: not used for float32 matmul here"])


def blas_lines() -> list[str]:
    import numpy  # noqa: F401 - loads numpy's BLAS, so threadpoolctl sees it
    import scipy.linalg  # noqa: F401
    from threadpoolctl import threadpool_info

    return [
        " ".join(
            filter(None, [f"{pool['user_api']}: {pool['internal_api']}", pool.get("version"), pool.get("architecture")])
        )
        + f", {pool['num_threads']} threads "
        f"({Path(pool['filepath']).name})"
        for pool in threadpool_info()
    ]


def get_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="python -m tools.machine_info", description=__doc__.split("\n\n")[0])


def main(argv: list[str] | None = None) -> int:
    get_parser().parse_args(argv)
    lines = cpu_lines() + torch_lines() + kernel_lines() + blas_lines()
    lines += [f"env: {name}={os.environ[name]}" for name in KERNEL_ENV if name in os.environ]
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
