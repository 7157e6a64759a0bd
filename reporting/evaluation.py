"""Evaluate a folder of submission files the way the official DCASE evaluator does.

Reads `anomaly_score_*`/`decision_result_*` files and ground truth (an evaluator-layout folder
with `ground_truth_data/` and `ground_truth_domain/`, by default `<folder>/ground_truth`; for
development files, the labels in the clip names themselves); returns per-section metrics. Writes
nothing (`tools.evaluate` is the command that does).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datasets.filenames import UnrecognisedFileName, parse_file_name
from reporting.metrics import SectionMetrics, jackknife_ci95, missing_classes, score_values, section_metrics
from reporting.submission import (
    DECISION_PREFIX,
    SCORE_PREFIX,
    SectionTruth,
    SubmissionError,
    file_name,
    read_ground_truth,
    read_value_file,
    section_files,
)

log = logging.getLogger(__name__)
GROUND_TRUTH_DIR = "ground_truth"


def truth_from_names(score_dir: Path) -> list[SectionTruth]:
    """Ground truth read from labelled (development-style) clip names in the score files."""
    truths = []
    for machine, section in section_files(score_dir):
        names = read_value_file(score_dir / file_name(SCORE_PREFIX, machine, section))
        labels = {}
        for name in names:
            try:
                fields = parse_file_name(name)
            except UnrecognisedFileName as e:
                raise SubmissionError(f"{score_dir}: {e}") from None
            if fields.label is None or fields.domain is None:
                raise SubmissionError(f"{score_dir}: {name} carries no label; pass the ground truth (--ground-truth)")
            labels[name] = (fields.label == "anomaly", fields.domain == "target")
        truths.append(SectionTruth(machine, section, labels))
    if not truths:
        raise SubmissionError(f"no anomaly_score_*_test.csv files in {score_dir}")
    return truths


def load_truth(score_dir: Path, ground_truth: Path | None = None) -> list[SectionTruth]:
    """Ground truth for a folder: the given evaluator-layout folder, else `<folder>/ground_truth`,
    else the labels in the clip names."""
    if ground_truth is not None:
        return read_ground_truth(ground_truth)
    if (score_dir / GROUND_TRUTH_DIR).is_dir():
        return read_ground_truth(score_dir / GROUND_TRUTH_DIR)
    return truth_from_names(score_dir)


@dataclass(frozen=True)
class SectionScores:
    """One section's clips, sorted by name: ground truth, anomaly scores and decisions."""

    machine: str
    section: str
    is_anomaly: np.ndarray  # [clips] bool
    is_target: np.ndarray  # [clips] bool
    scores: np.ndarray  # [clips] float
    decisions: np.ndarray  # [clips] 0 | 1


def read_sections(score_dir: Path, truths: list[SectionTruth]) -> list[SectionScores]:
    """The score and decision files in `score_dir` of every section in `truths`, each read once.

    Raises:
        SubmissionError: a section's score or decision file is missing or its rows do not match
            the ground truth exactly (the official evaluator would skip or crash).
    """
    sections = []
    for truth in truths:
        names = set(truth.labels)
        scores = read_value_file(score_dir / file_name(SCORE_PREFIX, truth.machine, truth.section), expected=names)
        decisions = read_value_file(
            score_dir / file_name(DECISION_PREFIX, truth.machine, truth.section), expected=names
        )
        ordered = sorted(names)
        sections.append(
            SectionScores(
                truth.machine,
                truth.section,
                is_anomaly=np.array([truth.labels[n][0] for n in ordered]),
                is_target=np.array([truth.labels[n][1] for n in ordered]),
                scores=np.array([scores[n] for n in ordered]),
                decisions=np.array([decisions[n] for n in ordered]),
            )
        )
    return sections


def evaluate_sections(sections: list[SectionScores], max_fpr: float = 0.1) -> list[SectionMetrics]:
    """Metrics of every section; logs each section and domain whose AUC/pAUC are undefined, and why
    (a warning where a domain has clips of one class only)."""
    for s in sections:
        for gap in missing_classes(s.is_anomaly, s.is_target):
            log.log(
                logging.INFO if gap.missing == "any" else logging.WARNING,
                "%s section %s: %s",
                s.machine,
                s.section,
                gap,
            )
    return [
        section_metrics(
            s.machine,
            s.section,
            is_anomaly=s.is_anomaly,
            is_target=s.is_target,
            scores=s.scores,
            decisions=s.decisions,
            max_fpr=max_fpr,
        )
        for s in sections
    ]


def evaluate_folder(score_dir: Path, truths: list[SectionTruth], max_fpr: float = 0.1) -> list[SectionMetrics]:
    """Metrics of every section in `truths`, read from the files in `score_dir` (see `read_sections`)."""
    return evaluate_sections(read_sections(score_dir, truths), max_fpr)


def log_score_coverage(results: list[SectionMetrics], ranking: str, what: str = "official score") -> None:
    """Say when `what` averages only some of its values, or none, because the others are undefined."""
    values = score_values(results, ranking)
    defined = sum(not np.isnan(v) for v in values)
    if defined == 0:
        log.warning(
            "%s undefined: none of its %d AUC/pAUC values (%s ranking) is defined, see above",
            what,
            len(values),
            ranking,
        )
    elif defined < len(values):
        log.info(
            "%s over the %d defined of its %d AUC/pAUC values (%s ranking); the others are undefined, see above",
            what,
            defined,
            len(values),
            ranking,
        )


def pooled_ci95(sections: list[SectionScores], max_fpr: float = 0.1) -> float:
    """The evaluator's `official score ci95`: mean of the jackknife CI95 of AUC and pAUC over the
    clips of all sections pooled (in the evaluator's order: machine, section, sorted names)."""
    is_anomaly = np.concatenate([s.is_anomaly for s in sections])
    scores = np.concatenate([s.scores for s in sections])
    return float(np.mean([jackknife_ci95(is_anomaly, scores), jackknife_ci95(is_anomaly, scores, max_fpr)]))
