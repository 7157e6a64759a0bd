"""The systems benchmark runs the real entry points, reads its figures from the result folders,
and skips recorded steps when rerun."""

from __future__ import annotations

import sys

from tests.conftest import ok, parse_figures, result_figures, run_script


def test_benchmark_trains_tests_and_resumes(demo_corpus, tmp_path):
    command = [
        sys.executable,
        "-m",
        "benchmarks.systems",
        "--data-root",
        str(demo_corpus),
        "--workdir",
        str(tmp_path / "work"),
        "--system",
        "classical:gaussian,knn",
    ]
    first = ok(run_script(command, timeout=600))
    figures = parse_figures(first.stdout)
    for scorer in ("gaussian", "knn"):
        result = tmp_path / "work" / "results" / "dev_data" / f"classical_{scorer}"
        assert abs(figures[f"classical_{scorer}_official"][0] - result_figures(result)["official"]) < 1e-3
        assert 0.0 < figures[f"classical_{scorer}_auc_target"][0] <= 1.0
        assert figures[f"classical_{scorer}_test_seconds"][0] > 0
    assert figures["classical_train_seconds"][0] > 0
    # the process tree of 01_train.sh loads numpy and scikit-learn: tens of MiB at least
    assert figures["classical_train_peak_rss"][0] > 30
    table = (tmp_path / "work" / "table.md").read_text()
    assert "| classical | gaussian |" in table and "| classical | knn |" in table

    again = ok(run_script(command, timeout=600))
    assert again.stderr.count(": recorded,") == 3  # one training and two test steps
    assert parse_figures(again.stdout)["classical_train_seconds"] == figures["classical_train_seconds"]


def test_unknown_system_or_scorer_is_one_line(tmp_path):
    for spec, valid in (("forest", "classical"), ("classical:psychic", "gaussian")):
        result = run_script(
            [sys.executable, "-m", "benchmarks.systems", "--data-root", str(tmp_path), "--workdir", str(tmp_path)]
            + ["--system", spec]
        )
        assert result.returncode == 2
        assert valid in result.stderr and "Traceback" not in result.stderr
