"""The auxiliary benchmark runs as a real process and prints `name value unit` lines."""

from __future__ import annotations

import sys

from tests.conftest import parse_figures, run_script


def test_benchmark_prints_its_figures():
    result = run_script(
        [
            sys.executable,
            "-m",
            "benchmarks.auxiliary",
            "--clips",
            "6",
            "--test-clips",
            "3",
            "--frames",
            "20",
            "--classes",
            "3",
            "--threads",
            "1",
            "--device",
            "cpu",
        ],
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = parse_figures(result.stdout)
    for name, unit in (
        ("train_clips_per_second", "clips/s"),
        ("embed_clips_per_second", "clips/s"),
        ("spectrum_clips_per_second", "clips/s"),
        ("train_epoch_seconds", "s"),
        ("train_minutes_estimated", "min"),
        ("peak_rss_main", "MiB"),
    ):
        assert figures[name][1] == unit and figures[name][0] > 0, name
    assert 300_000 < figures["parameters"][0] < 3_000_000
