"""Our metrics against the official evaluator's and baseline's own output files (to 1e-6)."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from reporting.evaluation import evaluate_folder, load_truth, pooled_ci95, read_sections
from reporting.metrics import jackknife_ci95, missing_classes, official_score, score_values, section_metrics
from reporting.result_tables import BASELINE_COLUMNS, evaluator_rows, machine_result_rows, result_rows, summary_rows
from reporting.submission import read_ground_truth

TOL = 1e-6


def _rows(path):
    with path.open(newline="") as f:
        return list(csv.reader(f))


def _assert_rows_equal(ours, golden):
    """Same labels, same empty cells; numbers equal to 1e-6."""
    assert len(ours) == len(golden)
    for mine, theirs in zip(ours, golden):
        mine = ["" if c is None else str(c) for c in mine]
        assert len(mine) == len(theirs), (mine, theirs)
        for a, b in zip(mine, theirs):
            try:
                assert float(a) == pytest.approx(float(b), abs=TOL), (mine, theirs)
            except ValueError:
                assert a == b, (mine, theirs)


@pytest.fixture(params=["MSE", "MAHALA"])
def dev_case(request, dcase_reference):
    return dcase_reference / "golden_metrics" / "dev2024_baseline_medium" / request.param, request.param


def test_evaluator_report_on_the_baseline_dev_scores(dev_case):
    folder, mode = dev_case
    scores = folder / "scores"
    truths = load_truth(scores)  # development names carry the labels
    results = evaluate_folder(scores, truths)
    ci95 = pooled_ci95(read_sections(scores, truths))
    _assert_rows_equal(evaluator_rows(results, ci95), _rows(folder / "evaluator_output" / f"{mode}_result.csv"))


def test_baseline_result_files(dev_case):
    folder, _ = dev_case
    results = evaluate_folder(folder / "scores", load_truth(folder / "scores"))
    for machine in ("fan", "gearbox"):
        golden = _rows(folder / "baseline_result" / f"result_{machine}_roc.csv")
        ours = machine_result_rows([r for r in results if r.machine == machine])
        assert ours[0] == BASELINE_COLUMNS == golden[0]
        _assert_rows_equal(ours, golden)


def test_summary_tables_of_the_official_summarizer(dcase_reference):
    base = dcase_reference / "golden_metrics" / "dev2024_baseline_medium"
    systems = {
        f"baseline_{m}": evaluate_folder(base / m / "scores", load_truth(base / m / "scores"))
        for m in ("MAHALA", "MSE")
    }
    golden = _rows(base / "DCASE2024T2_auc_pauc_extract.csv")
    _assert_rows_equal(summary_rows(systems, golden[0][4:]), golden)


def test_evaluation_set_with_ties_and_shuffled_rows(dcase_reference):
    case = dcase_reference / "golden_metrics" / "eval2024_ties"
    truths = read_ground_truth(dcase_reference / "official_lists" / "evaluator_2024")
    assert len(truths) == 9 and all(len(t.labels) == 200 for t in truths)
    results = evaluate_folder(case / "scores", truths)
    _assert_rows_equal(
        evaluator_rows(results, pooled_ci95(read_sections(case / "scores", truths))),
        _rows(case / "evaluator_output" / "ties_system_result.csv"),
    )
    paper = _rows(case / "evaluator_output" / "teams_official_score_paper.csv")
    _assert_rows_equal(summary_rows({"ties_system": results}, paper[0][4:]), paper)
    official = _rows(case / "evaluator_output" / "teams_official_score.csv")
    assert official_score(results) == pytest.approx(float(official[1][1]), abs=TOL)


def test_metric_definitions_on_a_hand_checked_section():
    # source: normals 0.1, 0.2; anomalies 0.8, 0.3 | target: normals 0.5, 0.9; anomaly 0.6
    anomaly = np.array([0, 0, 1, 1, 0, 0, 1], bool)
    target = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    scores = np.array([0.1, 0.2, 0.8, 0.3, 0.5, 0.9, 0.6])
    decisions = np.array([0, 0, 1, 0, 1, 1, 1])
    m = section_metrics("fan", "00", anomaly, target, scores, decisions)
    assert m.auc["source"] == pytest.approx(1.0)  # source normals below every anomaly
    # target normals (0.5, 0.9) x all anomalies (0.8, 0.3, 0.6): only 0.5<0.8 and 0.5<0.6 are ranked right
    assert m.auc["target"] == pytest.approx(2 / 6)
    assert m.auc_domain["target"] == pytest.approx(0.5) and m.auc_domain["source"] == pytest.approx(1.0)
    assert (m.precision["source"], m.recall["source"]) == (1.0, 0.5)
    assert (m.precision["target"], m.recall["target"]) == (pytest.approx(1 / 3), 1.0)
    assert m.f1["target"] == pytest.approx(0.5)


def test_legacy_rankings():
    anomaly = np.array([0, 0, 1, 1, 0, 0, 1, 1], bool)
    target = np.array([0, 0, 0, 0, 1, 1, 1, 1], bool)
    scores = np.array([0.1, 0.4, 0.3, 0.9, 0.2, 0.5, 0.6, 0.7])
    m = section_metrics("fan", "00", anomaly, target, scores, np.zeros(8))
    assert official_score([m], "dcase2020") == pytest.approx(np.mean([m.auc_domain["source"], m.pauc_domain["source"]]))
    hm = 4 / sum(
        1 / v
        for v in (m.auc_domain["source"], m.auc_domain["target"], m.pauc_domain["source"], m.pauc_domain["target"])
    )
    assert official_score([m], "dcase2021") == pytest.approx(hm)
    with pytest.raises(ValueError, match="unknown ranking"):
        official_score([m], "dcase2019")


def test_a_domain_without_clips_gives_empty_cells_not_a_crash():
    m = section_metrics(
        "ToyCar",
        "01",
        np.array([0, 0, 1, 1], bool),
        np.zeros(4, bool),
        np.array([0.1, 0.2, 0.3, 0.4]),
        np.array([0, 0, 1, 1]),
    )
    assert np.isnan(m.auc["target"]) and m.auc["source"] == 1.0
    assert machine_result_rows([m])[1][2] == ""


def test_missing_classes_name_the_domain_and_the_undefined_values():
    # source: 2 normals + 2 anomalies; target: normals only
    anomaly = np.array([0, 0, 1, 1, 0, 0], bool)
    target = np.array([0, 0, 0, 0, 1, 1], bool)
    gaps = missing_classes(anomaly, target)
    assert [str(g) for g in gaps] == [
        "target domain has no anomalous clips: pAUC (target), AUC over target clips (2021 ranking) undefined"
    ]
    m = section_metrics("fan", "00", anomaly, target, np.array([0.1, 0.2, 0.8, 0.3, 0.5, 0.9]), np.zeros(6))
    assert m.auc["target"] == pytest.approx(0.25)  # target normals vs the source anomalies: defined
    assert np.isnan(m.pauc_domain["target"]) and np.isnan(m.auc_domain["target"])

    no_target_normals = missing_classes(np.array([0, 1, 1, 1], bool), np.array([0, 0, 1, 1], bool))
    assert [(g.domain, g.missing, g.undefined[0]) for g in no_target_normals] == [("target", "normal", "AUC (target)")]
    no_target = missing_classes(np.array([0, 1], bool), np.array([0, 0], bool))
    assert [(g.domain, g.missing) for g in no_target] == [("target", "any")]
    assert [str(g) for g in missing_classes(np.zeros(4, bool), np.array([0, 0, 1, 1], bool))] == [
        "section has no anomalous clips: every AUC and pAUC undefined"
    ]
    assert missing_classes(np.ones(2, bool), np.array([0, 1], bool))[0].missing == "normal"
    assert missing_classes(np.array([0, 1, 0, 1], bool), np.array([0, 0, 1, 1], bool)) == []


def test_the_official_score_averages_the_defined_values_only():
    complete = section_metrics(
        "fan",
        "00",
        np.array([0, 1, 0, 1], bool),
        np.array([0, 0, 1, 1], bool),
        np.array([0.1, 0.9, 0.2, 0.6]),
        np.zeros(4),
    )
    no_anomalies = section_metrics(
        "pump", "00", np.zeros(4, bool), np.array([0, 0, 1, 1], bool), np.array([0.1, 0.9, 0.2, 0.6]), np.zeros(4)
    )
    assert all(np.isnan(v) for v in score_values([no_anomalies]))
    assert np.isnan(official_score([no_anomalies]))
    assert official_score([complete, no_anomalies]) == official_score([complete]) == pytest.approx(1.0)
    rows = result_rows([complete, no_anomalies], "dcase2022", official_score([complete, no_anomalies]))
    pump = rows[rows.index(["pump"]) + 2]
    assert pump[:6] == ["00", "", "", "", "", ""]  # AUC (source, target), pAUC (all, source, target): empty cells
    assert result_rows([no_anomalies], "dcase2022", official_score([no_anomalies]))[-2] == ["official score", ""]
    evaluator = evaluator_rows([no_anomalies], jackknife_ci95(np.zeros(4, bool), np.arange(4.0)))
    assert evaluator[2][:5] == ["00", "", "", "", ""] and evaluator[-3:-1] == [
        ["official score", "", ""],
        ["official score ci95", "", ""],
    ]
    table = summary_rows({"sys": [complete, no_anomalies]}, ["fan", "pump"])
    assert table[1] == ["sys", "AUC (source)", 1.0, 1.0, 1.0, ""]


def test_the_confidence_interval_of_a_single_anomaly_is_undefined_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's UndefinedMetricWarning would raise here
        assert np.isnan(jackknife_ci95(np.array([0, 0, 0, 1], bool), np.array([0.1, 0.2, 0.3, 0.4])))
        assert np.isnan(jackknife_ci95(np.zeros(4, bool), np.arange(4.0), max_fpr=0.1))
        assert jackknife_ci95(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.3, 0.2, 0.4])) > 0
