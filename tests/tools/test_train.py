"""./01_train.sh's command line: its help lists every option, the torchrun one included."""

from __future__ import annotations

from tests.conftest import ok, run_script


def test_help_lists_the_run_options_and_nproc_per_node():
    text = ok(run_script(["./01_train.sh", "-h"], timeout=120)).stdout
    for option in (
        "-d, --dev",
        "-e, --eval",
        "--system SYSTEM",
        "--score SCORE",
        "--data-root DATA_ROOT",
        "--year YEAR",
        "--machines MACHINES",
        "--device DEVICE",
        "--force",
        "--nproc-per-node N",
    ):
        assert option in text, option
    assert "--section.key value" in text
