"""tools.test (./02_test.sh) refuses what would give a silent wrong result: a model trained with other
settings, damaged model files, and it never leaves a results folder that mixes two runs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from tools import test as test_driver
from tools import train as train_driver

MACHINES = "SynthFan,SynthValve"


@pytest.fixture(scope="module")
def trained(demo_corpus, tmp_path_factory) -> tuple[Path, list[str]]:
    """The classical system trained on two demo machine types, and the arguments that did it."""
    root = tmp_path_factory.mktemp("classical")
    args = [
        "-d",
        "--system",
        "classical",
        "--data-root",
        str(demo_corpus),
        "--machines",
        MACHINES,
        "--run.model_dir",
        str(root / "models"),
        "--data.cache_dir",
        str(root / "cache"),
    ]
    assert train_driver.main(args) == 0
    return root, args


def _result(root: Path) -> list[str]:
    return ["--run.result_dir", str(root)]


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--feature.fmin", "2000"], "feature.fmin (trained 0.0, now 2000.0)"),
        (["--classical.n_neighbors", "5"], "classical.n_neighbors (trained 1, now 5)"),
        (["--feature.n_mels", "64"], "feature.n_mels (trained 128, now 64)"),
    ],
)
def test_a_model_trained_with_other_settings_is_refused_naming_the_keys(trained, tmp_path, capsys, extra, named):
    _, args = trained
    assert test_driver.main(args + _result(tmp_path) + extra) == 1
    err = capsys.readouterr().err
    assert "was trained with other settings" in err and named in err
    assert f"retrain with ./01_train.sh {' '.join(args)} {' '.join(extra)} --force" in err
    assert not (tmp_path / "dev_data" / "classical_knn").exists()


def test_test_time_settings_may_differ_and_the_results_record_them(trained, tmp_path):
    _, args = trained
    assert (
        test_driver.main(
            args
            + _result(tmp_path)
            + ["--score", "gaussian", "--decision.threshold_quantile", "0.5", "--data.workers", "1"]
        )
        == 0
    )
    used = yaml.safe_load((tmp_path / "dev_data" / "classical_gaussian" / "config.yaml").read_text())
    assert used["decision"]["threshold_quantile"] == 0.5 and used["score"]["method"] == "gaussian"


def test_a_failed_run_leaves_the_previous_complete_results_and_an_incomplete_folder(
    trained, demo_corpus, tmp_path, capsys
):
    _, args = trained
    out = tmp_path / "dev_data" / "classical_knn"
    assert test_driver.main(args + _result(tmp_path)) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert "result.csv" in before
    # SynthPump has no model: the run fails after scoring the machine types before it.
    assert test_driver.main(args + _result(tmp_path) + ["--machines", "SynthFan,SynthPump"]) == 1
    err = capsys.readouterr().err
    assert "no trained model in " in err and "SynthPump (its .completed marker is missing)" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    partial = out.with_name("classical_knn.incomplete")
    assert (partial / "anomaly_score_SynthFan_section_00_test.csv").is_file() and not (partial / "result.csv").exists()
    assert f"incomplete results left in {partial}" in err
    assert test_driver.main(args + _result(tmp_path)) == 0  # a later complete run replaces both
    assert not partial.exists() and (out / "result.csv").read_bytes() == before["result.csv"]


def _damaged(whole: bytes, damage: str) -> bytes:
    if damage == "truncate":
        return whole[: len(whole) // 3]
    if damage == "cut_after_a_line":  # a table cut at a row boundary still parses: the marker's digest tells
        return whole[: whole.index(b"\n", len(whole) // 3) + 1]
    return b"\x00garbage\xff" * 7


@pytest.mark.parametrize("damage", ["truncate", "cut_after_a_line", "garbage"])
def test_damaged_model_files_are_named_and_training_rebuilds_them(trained, tmp_path, capsys, damage):
    root, args = trained
    model = root / "models" / "dev_data" / "classical" / "SynthValve"
    for name in ("classical.joblib", "train_scores.csv"):
        path = model / name
        path.write_bytes(_damaged(path.read_bytes(), damage))
        assert test_driver.main(args + _result(tmp_path)) == 1
        err = capsys.readouterr().err
        assert f"{path}" in err and "damaged" in err and "retrain with ./01_train.sh" in err
        capsys.readouterr()
        assert train_driver.main(args) == 0
        err = capsys.readouterr().err
        assert f"{model}: retraining, the stored model is unusable" in err
        assert test_driver.main(args + _result(tmp_path)) == 0
        capsys.readouterr()


def test_a_failed_retraining_leaves_no_model_that_looks_complete(trained, tmp_path, capsys):
    root, args = trained
    model = root / "models" / "dev_data" / "classical" / "SynthFan"
    assert (model / ".completed").is_file()
    # A retraining that fails (every training clip skipped as unreadable: here a cache folder that cannot exist).
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache folder should be")
    assert train_driver.main(args + ["--force", "--machines", "SynthFan", "--data.cache_dir", str(blocker)]) == 1
    assert not (model / ".completed").exists()
    assert test_driver.main(args + _result(tmp_path) + ["--machines", "SynthFan"]) == 1
    err = capsys.readouterr().err
    assert "no trained model in " in err and "SynthFan (its .completed marker is missing)" in err
    assert train_driver.main(args) == 0  # and the next training rebuilds it


def test_the_unlabelled_hint_names_a_valid_command(demo_corpus, tmp_path, capsys):
    args = [
        "-e",
        "--system",
        "classical",
        "--data-root",
        str(demo_corpus),
        "--run.model_dir",
        str(tmp_path / "m"),
        "--data.cache_dir",
        str(tmp_path / "c"),
        "--year",
        "2024",
    ]
    assert train_driver.main(args) == 0
    assert test_driver.main(args + _result(tmp_path)) == 0
    err = capsys.readouterr().err
    assert "./00_download.sh -e --year 2024" in err and "--label " not in err
    rows = list(
        csv.reader((tmp_path / "eval_data" / "classical_knn" / "anomaly_score_SynthBlower_section_00_test.csv").open())
    )
    assert rows and all(r[0].startswith("section_00_") for r in rows)
