"""python -m tools.tune on the demo corpus: a tiny classical search over machine-type folds writes
its tables, plot and best configuration; the best configuration trains and scores through
01_train.sh/02_test.sh --config to exactly that trial's score; a SIGKILLed search resumes without
losing a completed trial; the selection studies never see their fold's held-out machine types."""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from tests.conftest import kill_when, ok, result_figures, run_dirs, run_script
from tools import tune

MACHINES = ["SynthFan", "SynthGearbox", "SynthPump", "SynthValve"]
# Keys that need no new features, so the search trains from the shared feature cache.
SPACE = """trials: 5
space:
  score.method: {choices: [knn, gaussian]}
  classical.n_neighbors: {int: [1, 8]}
  classical.covariance_shrinkage: {choices: [true, false]}
  classical.statistics: {choices: [[mean, std, max], [mean, max]]}
"""
STUDIES = ["fold1", "fold2", "all"]


def _csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _args(demo_corpus: Path, space: Path, out: Path, cache: Path, trials: int) -> list[str]:
    return [
        "--system",
        "classical",
        "--data-root",
        str(demo_corpus),
        "--space",
        str(space),
        "--trials",
        str(trials),
        "--folds",
        "2",
        "--out-dir",
        str(out),
        "--data.cache_dir",
        str(cache),
        "--data.workers",
        "1",
        # The tuning machinery is under test, not the features: one group keeps each trial's
        # training (every detector, cross-fitted per domain) a third of the default's.
        "--classical.features",
        "logmel_stats",
    ]


@pytest.fixture(scope="module")
def searched(demo_corpus, tmp_path_factory) -> tuple[Path, Path, str]:
    tmp = tmp_path_factory.mktemp("tune")
    space = tmp / "space.yaml"
    space.write_text(SPACE)
    args = _args(demo_corpus, space, tmp / "tune", tmp / "cache", trials=3)
    return tmp, space, args


@pytest.fixture(scope="module")
def finished_search(searched) -> Path:
    tmp, _, args = searched
    assert tune.main(args) == 0
    return tmp / "tune" / "classical"


def test_a_tiny_search_writes_its_tables_plot_and_best_configuration(searched, finished_search, capsys):
    out = finished_search
    trials = _csv(out / "trials.csv")
    assert [r["study"] for r in trials] == [s for s in STUDIES for _ in range(3)]
    assert all(r["state"] == "COMPLETE" and 0 < float(r["official score"]) <= 1 for r in trials)
    assert all(r["score.method"] in ("knn", "gaussian") and 1 <= int(r["classical.n_neighbors"]) <= 8 for r in trials)
    # Every study starts from the hand-set defaults (knn, k = 1, shrinkage, mean/std/max).
    assert [trials[3 * i]["classical.n_neighbors"] for i in range(3)] == ["1", "1", "1"]
    folds = _csv(out / "folds.csv")
    assert [r["fold"] for r in folds] == ["fold1", "fold2", "pooled"]
    held_out = [m for r in folds[:2] for m in r["held-out machine types"].split()]
    assert sorted(held_out) == MACHINES
    for fold in folds[:2]:
        mine = [r for r in trials if r["study"] == fold["fold"]]
        best = max(mine, key=lambda r: float(r["official score"]))
        assert float(fold["score on training types"]) == float(best["official score"])
        assert 0 < float(fold["held-out: tuned"]) <= 1 and 0 < float(fold["held-out: defaults"]) <= 1
    heldout = _csv(out / "heldout.csv")
    assert [r["configuration"] for r in heldout] == ["tuned by machine-type CV", "defaults"]
    assert float(heldout[0]["official score"]) == float(folds[2]["held-out: tuned"])
    assert (out / "trials.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["run"] == {"system": "classical"} and best["score"]["method"] in ("knn", "gaussian")
    assert "estimate on unseen machine types (2-fold" in (out / "best.yaml").read_text()


def test_the_selection_studies_never_see_their_held_out_machine_types(finished_search):
    database = finished_search.parent / "classical.db"
    folds = {r["fold"]: set(r["held-out machine types"].split()) for r in _csv(finished_search / "folds.csv")[:2]}
    for name, held_out in folds.items():
        identity = json.loads(
            optuna.load_study(study_name=name, storage=f"sqlite:///{database}").user_attrs["identity"]
        )
        assert set(identity["machines"]).isdisjoint(held_out)
        assert set(identity["machines"]) | held_out == set(MACHINES)
    identity = json.loads(optuna.load_study(study_name="all", storage=f"sqlite:///{database}").user_attrs["identity"])
    assert identity["machines"] == MACHINES


def test_the_best_configuration_trains_and_scores_through_the_scripts_to_its_trial_score(
    demo_corpus, finished_search, tmp_path
):
    best_file = finished_search / "best.yaml"
    chosen = max(
        (r for r in _csv(finished_search / "trials.csv") if r["study"] == "all"),
        key=lambda r: float(r["official score"]),
    )
    args = ["-d", "--config", str(best_file), "--data-root", str(demo_corpus)] + run_dirs(tmp_path)
    ok(run_script(["./01_train.sh", *args]))
    ok(run_script(["./02_test.sh", *args]))
    model = yaml.safe_load((tmp_path / "models" / "dev_data" / "classical" / "SynthFan" / "config.yaml").read_text())
    assert model["run"]["system"] == "classical"
    assert model["classical"]["n_neighbors"] == int(chosen["classical.n_neighbors"])
    assert str(model["classical"]["covariance_shrinkage"]) == chosen["classical.covariance_shrinkage"]
    assert "[" + ", ".join(model["classical"]["statistics"]) + "]" == chosen["classical.statistics"]
    result = tmp_path / "results" / "dev_data" / f"classical_{chosen['score.method']}"
    assert result_figures(result)["official"] == pytest.approx(float(chosen["official score"]), abs=1e-12)


def test_a_resumed_study_made_with_another_space_is_refused(searched, finished_search, tmp_path, capsys):
    tmp, _, args = searched
    other = tmp_path / "other.yaml"
    other.write_text(SPACE.replace("[1, 8]", "[1, 9]"))
    assert tune.main(args[: args.index("--space") + 1] + [str(other)] + args[args.index("--space") + 2 :]) == 1
    err = capsys.readouterr().err
    assert "study 'fold1'" in err and "was made with another search space" in err and "delete" in err


def test_a_killed_search_resumes_without_losing_completed_trials(demo_corpus, searched, tmp_path):
    tmp, space, _ = searched
    out = tmp_path / "tune"
    args = _args(demo_corpus, space, out, tmp / "cache", trials=4)  # the fixture's feature cache
    database = out / "classical.db"

    def completed() -> bool:
        if not database.is_file():
            return []
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                return db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchall()[0][0] >= 2
        except sqlite3.Error:  # the tables are not made yet
            return False

    kill_when([sys.executable, "-m", "tools.tune", *args], completed, timeout=600)
    before = {
        (s.study_name, t.number): (t.params, t.value)
        for s in optuna.get_all_study_summaries(f"sqlite:///{database}")
        for t in optuna.load_study(study_name=s.study_name, storage=f"sqlite:///{database}").get_trials()
        if t.state == TrialState.COMPLETE
    }
    assert len(before) >= 2
    assert tune.main(args) == 0
    after = {}
    for name in STUDIES:
        trials = optuna.load_study(study_name=name, storage=f"sqlite:///{database}").get_trials()
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        assert len(complete) == 4, name  # the budget, whatever the kill interrupted
        after |= {(name, t.number): (t.params, t.value) for t in complete}
        for t in trials:
            assert t.state in (TrialState.COMPLETE, TrialState.FAIL)  # a killed trial: failed, run again
    assert all(after[key] == value for key, value in before.items())
    rows = _csv(out / "classical" / "trials.csv")
    assert sum(r["state"] == "COMPLETE" for r in rows) == 4 * len(STUDIES)
