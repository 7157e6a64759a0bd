"""Submission CSVs byte for byte, and strict reading of score files."""

from __future__ import annotations

import numpy as np
import pytest

from reporting.decision import decide, gamma_threshold
from reporting.submission import SubmissionError, read_value_file, write_section_files

GOLDEN = ("golden_metrics", "dev2024_baseline_medium", "MSE", "scores")


@pytest.mark.parametrize("machine", ["fan", "gearbox"])
def test_written_files_are_byte_identical_to_the_baselines(dcase_reference, tmp_path, machine):
    """Same bytes per row as the official baseline's files; rows in file-name order (the baseline
    writes normals before anomalies; the evaluator sorts by name either way)."""
    golden = dcase_reference.joinpath(*GOLDEN)
    scores = read_value_file(golden / f"anomaly_score_{machine}_section_00_test.csv")
    decisions = read_value_file(golden / f"decision_result_{machine}_section_00_test.csv")
    names = list(reversed(list(scores)))  # any input order: rows come out in file-name order
    write_section_files(
        tmp_path, machine, "00", names, np.array([scores[n] for n in names]), np.array([decisions[n] for n in names])
    )
    for kind in ("anomaly_score", "decision_result"):
        name = f"{kind}_{machine}_section_00_test.csv"
        golden_lines = (golden / name).read_bytes().splitlines(keepends=True)
        assert (tmp_path / name).read_bytes() == b"".join(sorted(golden_lines))
    assert not list(tmp_path.glob("*.tmp"))


def _write(tmp_path, text):
    path = tmp_path / "anomaly_score_fan_section_00_test.csv"
    path.write_text(text)
    return path


def test_missing_rows_are_reported(tmp_path):
    path = _write(tmp_path, "a.wav,0.1\n")
    with pytest.raises(SubmissionError, match=r"lacks 1 row\(s\), e.g. b.wav"):
        read_value_file(path, expected={"a.wav", "b.wav"})


def test_extra_duplicate_header_and_malformed_rows(tmp_path):
    with pytest.raises(SubmissionError, match=r"1 row\(s\) for unknown clips, e.g. c.wav"):
        read_value_file(_write(tmp_path, "a.wav,0.1\nc.wav,0.3\n"), expected={"a.wav"})
    with pytest.raises(SubmissionError, match="a.wav appears twice"):
        read_value_file(_write(tmp_path, "a.wav,0.1\na.wav,0.2\n"))
    with pytest.raises(SubmissionError, match="line 1: value 'score' is not a number \\(no header allowed\\)"):
        read_value_file(_write(tmp_path, "file,score\na.wav,0.1\n"))
    with pytest.raises(SubmissionError, match="line 2: expected '<wav name>,<value>'"):
        read_value_file(_write(tmp_path, "a.wav,0.1\nb.wav\n"))
    with pytest.raises(SubmissionError, match="does not exist"):
        read_value_file(tmp_path / "nothing.csv")


def test_machine_names_with_underscores_are_refused(tmp_path):
    with pytest.raises(SubmissionError, match="contains '_'"):
        write_section_files(tmp_path, "my_pump", "00", ["a.wav"], np.array([1.0]), np.array([0]))


def test_gamma_threshold_is_the_fitted_quantile():
    import scipy.stats

    scores = scipy.stats.gamma.rvs(3.0, loc=1.0, scale=2.0, size=4000, random_state=0)
    threshold = gamma_threshold(scores, 0.9)
    assert threshold == pytest.approx(scipy.stats.gamma.ppf(0.9, 3.0, loc=1.0, scale=2.0), rel=0.05)
    assert decide(np.array([threshold - 1, threshold + 1]), threshold).tolist() == [0, 1]


def test_gamma_threshold_falls_back_on_degenerate_scores():
    assert gamma_threshold(np.array([2.0, 2.0, 2.0]), 0.9) == 2.0
    with pytest.raises(ValueError, match="must lie in"):
        gamma_threshold(np.array([1.0, 2.0, 3.0]), 1.5)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_score_is_refused_before_anything_is_written(tmp_path, value):
    names = ["section_00_source_test_normal_0001_a.wav", "section_00_target_test_anomaly_0002_a.wav"]
    with pytest.raises(
        SubmissionError,
        match=rf"^fan section 00: the system produced a non-finite score \({value}\) "
        rf"for section_00_target_test_anomaly_0002_a.wav; retrain",
    ):
        write_section_files(tmp_path, "fan", "00", names, np.array([0.5, value]), np.array([0, 1]))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "NaN", "infinity"])
def test_non_finite_values_in_a_file_are_reported_with_file_and_line(tmp_path, text):
    path = _write(tmp_path, f"a.wav,0.1\nb.wav,{text}\n")
    with pytest.raises(SubmissionError, match=rf"^{path}, line 2: value '{text}' is not a finite number"):
        read_value_file(path)
