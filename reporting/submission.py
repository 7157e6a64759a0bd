"""Anomaly scores and decisions <-> the official submission CSV files, and ground-truth files.

Writes, per machine type and section, `anomaly_score_<machine>_section_<ss>_test.csv` and
`decision_result_<machine>_section_<ss>_test.csv`: no header, rows `<wav name>,<value>` sorted by
file name, written atomically. Ground truth is written in the official evaluator's layout,
`ground_truth_data/` (1 = anomaly) and `ground_truth_domain/` (1 = target), so a results folder
can be evaluated exactly like the evaluator does. Reading is strict: a missing, extra or duplicate
row is an error that names the file, because the evaluator matches rows by position.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import write_csv

SCORE_PREFIX, DECISION_PREFIX = "anomaly_score", "decision_result"
GROUND_TRUTH_DATA, GROUND_TRUTH_DOMAIN = "ground_truth_data", "ground_truth_domain"
_FILE = re.compile(
    r"^(?P<kind>anomaly_score|decision_result|ground_truth)_(?P<machine>[^_]+)_section_(?P<section>\d{2})_test\.csv$"
)


class SubmissionError(ValueError):
    """A score, decision or ground-truth file that does not fit the official format."""


@dataclass(frozen=True)
class SectionTruth:
    """Ground truth of one machine type x section: file name -> (is anomaly, is target domain)."""

    machine: str
    section: str
    labels: dict[str, tuple[bool, bool]]


def file_name(kind: str, machine: str, section: str) -> str:
    """`anomaly_score_fan_section_00_test.csv` and its `decision_result_`/`ground_truth_` twins."""
    if "_" in machine:
        raise SubmissionError(f"machine type {machine!r} contains '_', which the official file names cannot hold")
    return f"{kind}_{machine}_section_{section}_test.csv"


def write_section_files(
    out_dir: Path, machine: str, section: str, names: list[str], scores: np.ndarray, decisions: np.ndarray
) -> None:
    """Write the score and decision file of one section, rows in file-name order.

    Raises:
        SubmissionError: a score is NaN or infinite (nothing is written).
    """
    broken = [i for i, score in enumerate(scores) if not np.isfinite(score)]
    if broken:
        first = broken[0]
        others = f" (and {len(broken) - 1} more clip(s))" if len(broken) > 1 else ""
        raise SubmissionError(
            f"{machine} section {section}: the system produced a non-finite score "
            f"({float(scores[first])}) for {names[first]}{others}; retrain the model (a diverged "
            f"training or a damaged model file gives such scores)"
        )
    order = np.argsort(np.array(names, dtype=object), kind="stable")
    write_csv(out_dir / file_name(SCORE_PREFIX, machine, section), [(names[i], repr(float(scores[i]))) for i in order])
    write_csv(
        out_dir / file_name(DECISION_PREFIX, machine, section), [(names[i], str(int(decisions[i]))) for i in order]
    )


def write_ground_truth(out_dir: Path, truth: SectionTruth) -> None:
    """Write one section's ground truth in the evaluator's two-folder layout."""
    name = file_name("ground_truth", truth.machine, truth.section)
    rows = sorted(truth.labels.items())
    write_csv(out_dir / GROUND_TRUTH_DATA / name, [(n, str(int(a))) for n, (a, _) in rows])
    write_csv(out_dir / GROUND_TRUTH_DOMAIN / name, [(n, str(int(t))) for n, (_, t) in rows])


def read_ground_truth(gt_dir: Path) -> list[SectionTruth]:
    """All sections of an evaluator-layout ground-truth folder, sorted by machine and section."""
    data_dir, domain_dir = gt_dir / GROUND_TRUTH_DATA, gt_dir / GROUND_TRUTH_DOMAIN
    if not data_dir.is_dir() or not domain_dir.is_dir():
        raise SubmissionError(f"{gt_dir} lacks {GROUND_TRUTH_DATA}/ or {GROUND_TRUTH_DOMAIN}/")
    truths = []
    for path in sorted(data_dir.glob("ground_truth_*_section_*_test.csv")):
        match = _FILE.match(path.name)
        if not match:
            raise SubmissionError(f"{path}: not a ground_truth_<machine>_section_<ss>_test.csv file")
        anomaly = read_value_file(path)
        domain = read_value_file(domain_dir / path.name, expected=set(anomaly))
        labels = {n: (anomaly[n] == 1, domain[n] == 1) for n in anomaly}
        truths.append(SectionTruth(match["machine"], match["section"], labels))
    if not truths:
        raise SubmissionError(f"no ground_truth_*_test.csv files in {data_dir}")
    return sorted(truths, key=lambda t: (t.machine, t.section))


def read_value_file(path: Path, expected: set[str] | None = None) -> dict[str, float]:
    """Read a headerless `<wav name>,<value>` file.

    Args:
        expected: the names the file must hold, exactly (None: no check).

    Raises:
        SubmissionError: the file is missing, has a header, a malformed row or a non-finite value
            (nan, inf), a duplicate, or rows missing / extra with respect to `expected`.
    """
    if not path.is_file():
        raise SubmissionError(f"{path} does not exist")
    values: dict[str, float] = {}
    with path.open(newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            if len(row) < 2:
                raise SubmissionError(f"{path}, line {line_no}: expected '<wav name>,<value>', got {row!r}")
            name, text = row[0], row[1]
            try:
                value = float(text)
            except ValueError:
                raise SubmissionError(
                    f"{path}, line {line_no}: value {text!r} is not a number (no header allowed)"
                ) from None
            if not np.isfinite(value):
                raise SubmissionError(
                    f"{path}, line {line_no}: value {text!r} is not a finite number; the system "
                    f"that wrote this file must be fixed and the clips scored again"
                )
            if name in values:
                raise SubmissionError(f"{path}, line {line_no}: {name} appears twice")
            values[name] = value
    if expected is not None:
        missing = sorted(expected - set(values))
        extra = sorted(set(values) - expected)
        if missing:
            raise SubmissionError(f"{path} lacks {len(missing)} row(s), e.g. {', '.join(missing[:3])}")
        if extra:
            raise SubmissionError(f"{path} has {len(extra)} row(s) for unknown clips, e.g. {', '.join(extra[:3])}")
    return values


def section_files(score_dir: Path) -> list[tuple[str, str]]:
    """(machine, section) of every anomaly-score file in a folder, sorted."""
    found = []
    for path in score_dir.glob(f"{SCORE_PREFIX}_*_section_*_test.csv"):
        match = _FILE.match(path.name)
        if match:
            found.append((match["machine"], match["section"]))
    return sorted(found)
