"""The machine report that .ci/run prints before the tests, from a real process and a real cpuinfo file."""

from __future__ import annotations

import sys

from tests.conftest import run_script
from tools.machine_info import cpu_lines


def test_cpu_model_and_kernel_flags_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: fpu avx2 fma avx512f "
        "avx512_bf16 amx_tile amx_bf16\n\nprocessor\t: 1\nmodel name\t: other\n"
    )
    model, flags = cpu_lines(cpuinfo)
    assert model.startswith("cpu: Intel(R) Xeon(R) Platinum 8480+, ")
    assert (
        flags == "cpu flags: avx2 fma avx512f avx512_bf16 amx_tile amx_bf16; absent: avx512_vnni avx512_fp16 amx_int8"
    )


def test_the_report_names_cpu_torch_kernels_blas_and_overrides():
    result = run_script([sys.executable, "-m", "tools.machine_info"], env={"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for prefix in ("cpu: ", "cpu flags: ", "torch: ", "torch build: ", "oneDNN bf16 ", "MKL: ", "blas: "):
        assert any(line.startswith(prefix) for line in lines), (prefix, result.stdout)
    assert "env: ONEDNN_MAX_CPU_ISA=AVX2" in lines
