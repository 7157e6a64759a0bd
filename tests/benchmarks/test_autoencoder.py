"""The autoencoder benchmark runs the real drivers on a tiny generated corpus and prints its figures."""

from __future__ import annotations

from benchmarks import autoencoder as benchmark
from tests.conftest import parse_figures


def test_the_benchmark_prints_its_figures(tmp_path, capsys):
    status = benchmark.main(
        ["--workdir", str(tmp_path), "--train-clips", "20", "--test-clips", "8", "--seconds", "1", "--epochs", "2"]
    )
    assert status == 0
    figures = parse_figures(capsys.readouterr().out)
    for name, unit in [
        ("feature_extraction_train", "clips/s"),
        ("train_epoch_mean", "s/epoch"),
        ("train_total", "s"),
        ("score_mse", "clips/s"),
        ("score_mahala", "clips/s"),
        ("peak_pss_tree", "MiB"),
        ("peak_rss_main", "MiB"),
        ("official_score_mahala", "score"),
    ]:
        assert figures[name][1] == unit and figures[name][0] > 0, name
    assert not list(tmp_path.glob("run-*"))  # the run folder is removed unless --keep
