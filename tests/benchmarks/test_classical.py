"""The classical benchmark fits and scores the real system on the demo corpus and prints its figures."""

from __future__ import annotations

from benchmarks import classical as benchmark
from tests.conftest import parse_figures


def test_the_benchmark_prints_its_figures(demo_corpus, tmp_path, capsys):
    status = benchmark.main(
        [
            "--data-root",
            str(demo_corpus),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--workers",
            "1",
            "--domains",
            "pooled",
            "separate",
            "--feature-sets",
            "logmel_stats+impulsiveness",
            "--combine",
            "concat",
            "--scorers",
            "knn",
        ]
    )
    assert status == 0
    figures = parse_figures(capsys.readouterr().out)
    for domains in ("pooled", "separate"):
        name = f"{domains}/logmel_stats+impulsiveness/concat"
        assert figures[f"fit_seconds/{name}"][1] == "s" and figures[f"fit_seconds/{name}"][0] > 0
        for metric, unit in [("official_score", "score"), ("auc_source_hmean", "auc"), ("auc_target_hmean", "auc")]:
            value, printed_unit = figures[f"{metric}/{name}/knn"]
            assert printed_unit == unit and 0.0 < value <= 1.0, metric
    assert "official_score/pooled/logmel_stats+impulsiveness/concat/gaussian" not in figures  # only --scorers
