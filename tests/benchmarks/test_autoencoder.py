"""The autoencoder benchmark runs the real drivers on a tiny generated corpus, for a network of
choice, and prints its figures."""

from __future__ import annotations

import pytest

from benchmarks import autoencoder as benchmark
from tests.conftest import parse_figures


@pytest.mark.parametrize("network", ["dense", "vae"])
def test_the_benchmark_prints_its_figures(tmp_path, capsys, network):
    status = benchmark.main(
        ["--workdir", str(tmp_path), "--train-clips", "20", "--test-clips", "8", "--seconds", "1", "--epochs", "2"]
        + ["--network", network]
    )
    assert status == 0
    figures = parse_figures(capsys.readouterr().out)
    # every scorer of the network, and only those
    scorers = ["mahala", "mse"] + (["elbo"] if network == "vae" else [])
    assert sorted(n[len("official_score_") :] for n in figures if n.startswith("official_score_")) == sorted(scorers)
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
