"""The meta file of a submission (labels, generated fields, checks, development results) and the
evaluation set a package is checked against."""

from __future__ import annotations

import pytest

from core.atomic import write_csv
from core.config import load_config
from networks.registry import SYSTEMS, get_system
from reporting.metrics import SectionMetrics
from reporting.result_tables import result_rows
from reporting.submission import SubmissionError
from reporting.submission_meta import (
    PLACEHOLDER,
    build_meta,
    label_problem,
    merge_meta,
    meta_problem,
    placeholders,
    read_dev_results,
    settings_differences,
)
from reporting.submission_package import evaluation_set


@pytest.mark.parametrize("label", ["Smith_ACME_task2_1", "Xiao_HEU-HIT_task2_4", "Le-Roux_Lab2_task2_3"])
def test_valid_labels(label):
    assert label_problem(label) is None


@pytest.mark.parametrize(
    "label", ["Smith_ACME_task2_0", "Smith_ACME_task2_5", "Smith_task2_1", "Smith_ACME_task1_1", "Smith ACME_task2_1"]
)
def test_invalid_labels_say_the_form(label):
    assert label_problem(label).startswith(f"submission label {label!r} must look like Lastname_Institute_task2_N")


def _config(system: str, **changes) -> dict:
    config = load_config().to_dict()
    config["run"]["system"] = system
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        config[section][key] = value
    return config


@pytest.mark.parametrize("system", list(SYSTEMS))
def test_generated_meta_of_every_system_and_scorer_passes_the_meta_check(system):
    for scorer in get_system(system).scorers:
        meta = build_meta("Smith_ACME_task2_1", _config(system), scorer, None)
        assert meta_problem(meta, "Smith_ACME_task2_1") is None
        assert not meta["system"]["description"]["machine_learning_method"].startswith(PLACEHOLDER)
        # what only the participant knows is a placeholder, and nothing else is
        assert "submission.authors[0].email" in set(placeholders(meta))
        assert not [k for k in placeholders(meta) if k.startswith(("results", "system.description"))]


def test_meta_reflects_the_settings():
    beats = build_meta("A_B_task2_1", _config("beats", **{"beats.checkpoint": "BEATs_iter3.pt"}), "knn", None)
    assert beats["system"]["description"]["external_data_usage"] == "pre-trained model"
    assert beats["system"]["pre_trained_models"][0]["name"] == "BEATs"
    scratch = build_meta("A_B_task2_1", _config("beats", **{"beats.checkpoint": None}), "knn", None)
    assert (
        scratch["system"]["description"]["external_data_usage"] is None
        and scratch["system"]["pre_trained_models"] is None
    )
    ensemble = build_meta("A_B_task2_1", _config("auxiliary", **{"auxiliary.ensemble": 3}), "knn", None)
    assert ensemble["system"]["description"]["ensemble_method_subsystem_count"] == 3
    rate = build_meta("A_B_task2_1", _config("autoencoder", **{"data.sample_rate": 22050}), "mse", None)
    assert rate["system"]["description"]["input_sampling_rate"] == "22.05kHz"


def test_an_unknown_system_gets_placeholders_not_guesses():
    meta = build_meta("A_B_task2_1", {**_config("autoencoder"), "run": {"system": "future"}, "future": {}}, "avg", None)
    assert meta["system"]["description"]["acoustic_features"].startswith(PLACEHOLDER)
    assert meta_problem(meta, "A_B_task2_1") is None


@pytest.mark.parametrize(
    "change, problem",
    [
        (lambda m: m["submission"].pop("authors"), "lacks the key submission.authors"),
        (
            lambda m: m["system"]["description"].pop("acoustic_features"),
            "lacks the key system.description.acoustic_features",
        ),
        (lambda m: m["submission"].update(abbreviation="ABCDEFGHIJK"), "is longer than 10 characters"),
        (
            lambda m: m["submission"]["authors"][0].update(corresponding=False),
            "no author is marked corresponding: true",
        ),
        (lambda m: m["submission"]["authors"][0].pop("email"), "submission.authors[0] lacks email"),
        (lambda m: m["submission"]["authors"][0]["affiliation"].pop("location"), "lacks affiliation.location"),
        (lambda m: m.update(system="x"), "system.description (system must be a mapping)"),
    ],
)
def test_meta_problems_are_named(change, problem):
    meta = build_meta("A_B_task2_1", _config("classical"), "knn", None)
    change(meta)
    assert problem in meta_problem(meta, "A_B_task2_1")


def test_user_fields_merge_over_the_generated_ones():
    generated = {"submission": {"name": "x", "authors": [{"lastname": "A"}]}, "system": {"source_code": "FILL IN"}}
    user = {"submission": {"authors": [{"lastname": "B"}, {"lastname": "C"}]}, "system": {"source_code": None}}
    assert merge_meta(generated, user) == {
        "submission": {"name": "x", "authors": [{"lastname": "B"}, {"lastname": "C"}]},
        "system": {"source_code": None},
    }


def _metrics(machine: str, section: str, value: float) -> SectionMetrics:
    both = {"source": value, "target": value / 2}
    return SectionMetrics(machine, section, value, both, value / 3, both, both, both, both, both)


def test_development_results_are_the_arithmetic_means_of_result_csv(tmp_path):
    results = [_metrics("fan", "00", 0.8), _metrics("fan", "01", 0.6), _metrics("valve", "00", 0.7)]
    write_csv(tmp_path / "result.csv", result_rows(results, "dcase2022", 0.55))
    dev = read_dev_results(tmp_path / "result.csv")
    assert dev.official_score == 0.55
    assert dev.machines["fan"] == pytest.approx({"auc_source": 0.7, "auc_target": 0.35, "pauc": 0.7 / 3}, abs=1e-15)
    assert dev.machines["valve"] == {"auc_source": 0.7, "auc_target": 0.35, "pauc": 0.7 / 3}
    meta = build_meta("A_B_task2_1", _config("classical"), "knn", dev)
    assert meta["results"]["development_dataset"]["valve"] == {"auc_source": 70.0, "auc_target": 35.0, "pauc": 70 / 3}
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SubmissionError, match="other.csv holds no per-machine results"):
        read_dev_results(tmp_path / "other.csv")


def test_settings_that_change_the_system_are_named():
    ours = _config("classical")
    theirs = _config("classical", **{"classical.n_neighbors": 7, "data.root": "elsewhere", "data.year": 2024})
    assert settings_differences(ours, theirs) == ["classical.n_neighbors (evaluation 1, development 7)"]
    assert settings_differences(ours, theirs, ignore=("n_neighbors",)) == []


def test_the_official_evaluation_set_must_be_complete(tmp_path):
    raw = tmp_path / "dcase2024t2" / "eval_data" / "raw"
    for machine in ("3DPrinter", "Scanner"):
        (raw / machine / "test").mkdir(parents=True)
        for i in (1, 2):
            (raw / machine / "test" / f"section_00_{i:04d}.wav").write_bytes(b"")
    with pytest.raises(SubmissionError) as error:
        evaluation_set(tmp_path, 2024)
    absent = ("AirCompressor", "BrushlessMotor", "HairDryer", "HoveringDrone", "RoboticArm", "ToothBrush", "ToyCircuit")
    listed = str(error.value).split(", whose")[0].removeprefix("the DCASE2024 evaluation set has ").split(", ")
    assert sorted(listed) == [f"{m} section 00" for m in absent]
    assert str(error.value).endswith("run ./00_download.sh -a -e --year 2024")
    # any other layout: the clips on disk are the evaluation set
    assert evaluation_set(raw, 2024) == {
        ("3DPrinter", "00"): ["section_00_0001.wav", "section_00_0002.wav"],
        ("Scanner", "00"): ["section_00_0001.wav", "section_00_0002.wav"],
    }
