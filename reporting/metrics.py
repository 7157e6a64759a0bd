"""Scores, decisions and ground truth of one section -> the official DCASE Task 2 metrics.

Definitions follow the official evaluator (2022 onward, unchanged through 2025):
- AUC (source): ROC AUC of source-domain normal clips against *all* anomalous clips of the section;
  AUC (target) likewise with target-domain normals;
- pAUC: `roc_auc_score(..., max_fpr=0.1)` (McClish-standardised) over all clips of the section;
- pAUC (source/target): the same over one domain's clips only (reported by the baseline, not ranked);
- precision, recall, F1 per domain from the 0/1 decisions, with the evaluator's epsilon guards;
- official score: harmonic mean, each value floored at machine epsilon, of the flat list of every
  AUC (source), AUC (target) and pAUC.
A ROC AUC needs normal and anomalous clips: where a section or domain lacks one class, the values
that need it are undefined (NaN; `missing_classes` says which and why), and means and the official
score are taken over the defined values (NaN if there are none).
The legacy rankings (2020: arithmetic mean of AUC and pAUC; 2021: harmonic mean of domain-only AUC
and pAUC) are available under their own names. Pure functions; nothing is read or written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import scipy.stats
from sklearn import metrics as skm

EPS = sys.float_info.epsilon
DOMAINS = ("source", "target")


@dataclass(frozen=True)
class SectionMetrics:
    """All metrics of one machine type x section. NaN where a domain lacks normals or anomalies."""

    machine: str
    section: str
    auc_all: float
    auc: dict[str, float]  # domain -> AUC (that domain's normals vs all anomalies)
    pauc: float
    pauc_domain: dict[str, float]  # domain -> pAUC over that domain's clips only
    auc_domain: dict[str, float]  # domain -> AUC over that domain's clips only (2021 ranking)
    precision: dict[str, float]
    recall: dict[str, float]
    f1: dict[str, float]


def section_metrics(
    machine: str,
    section: str,
    is_anomaly: np.ndarray,
    is_target: np.ndarray,
    scores: np.ndarray,
    decisions: np.ndarray,
    max_fpr: float = 0.1,
) -> SectionMetrics:
    """Metrics of one section.

    Args:
        is_anomaly, is_target: [clips] bool ground truth.
        scores: [clips] anomaly scores, higher = more anomalous.
        decisions: [clips] 0/1, 1 = judged anomalous.
    """
    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    is_target = np.asarray(is_target, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    decisions = np.asarray(decisions, dtype=int)
    auc, pauc_domain, auc_domain, precision, recall, f1 = {}, {}, {}, {}, {}, {}
    for domain in DOMAINS:
        in_domain = is_target if domain == "target" else ~is_target
        vs_all_anomalies = in_domain | is_anomaly
        auc[domain] = _auc(is_anomaly[vs_all_anomalies], scores[vs_all_anomalies])
        auc_domain[domain] = _auc(is_anomaly[in_domain], scores[in_domain])
        pauc_domain[domain] = _auc(is_anomaly[in_domain], scores[in_domain], max_fpr)
        precision[domain], recall[domain], f1[domain] = _prf(is_anomaly[in_domain], decisions[in_domain])
    return SectionMetrics(
        machine=machine,
        section=section,
        auc_all=_auc(is_anomaly, scores),
        auc=auc,
        pauc=_auc(is_anomaly, scores, max_fpr),
        pauc_domain=pauc_domain,
        auc_domain=auc_domain,
        precision=precision,
        recall=recall,
        f1=f1,
    )


@dataclass(frozen=True)
class MissingClass:
    """A section (domain None) or domain without normal or anomalous test clips."""

    domain: str | None
    missing: str  # "normal", "anomalous", or "any" (the domain has no clips at all)
    undefined: tuple[str, ...]  # the metrics this leaves undefined, named as in result.csv

    def __str__(self) -> str:
        where = f"{self.domain} domain" if self.domain else "section"
        what = "clips" if self.missing == "any" else f"{self.missing} clips"
        return f"{where} has no {what}: {', '.join(self.undefined)} undefined"


def missing_classes(is_anomaly: np.ndarray, is_target: np.ndarray) -> list[MissingClass]:
    """Which classes a section lacks, and which AUC/pAUC values `section_metrics` leaves NaN for it.

    Args:
        is_anomaly, is_target: [clips] bool ground truth of one section.
    """
    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    is_target = np.asarray(is_target, dtype=bool)
    if is_anomaly.all() or not is_anomaly.any():
        return [MissingClass(None, "normal" if is_anomaly.all() else "anomalous", ("every AUC and pAUC",))]
    gaps = []
    for domain in DOMAINS:
        in_domain = is_target if domain == "target" else ~is_target
        # AUC (domain) pits the domain's normals against every anomaly of the section; pAUC
        # (domain) and the 2021 ranking's AUC need both classes within the domain.
        within = (f"pAUC ({domain})", f"AUC over {domain} clips (2021 ranking)")
        if not in_domain.any():
            gaps.append(MissingClass(domain, "any", (f"AUC ({domain})",) + within))
        elif is_anomaly[in_domain].all():
            gaps.append(MissingClass(domain, "normal", (f"AUC ({domain})",) + within))
        elif not is_anomaly[in_domain].any():
            gaps.append(MissingClass(domain, "anomalous", within))
    return gaps


def hmean(values) -> float:
    """Harmonic mean with every value floored at machine epsilon, as the evaluator does; NaNs are
    dropped (a domain without clips)."""
    values = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if values.size == 0:
        return float("nan")
    return float(scipy.stats.hmean(np.maximum(values, EPS)))


def amean(values) -> float:
    """Arithmetic mean, NaNs dropped."""
    values = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    return float(values.mean()) if values.size else float("nan")


def ranked_values(results: list[SectionMetrics]) -> list[float]:
    """The flat list the official score averages: all AUC (source), all AUC (target), all pAUC."""
    return [r.auc["source"] for r in results] + [r.auc["target"] for r in results] + [r.pauc for r in results]


def score_values(results: list[SectionMetrics], ranking: str = "dcase2022") -> list[float]:
    """The values a challenge ranking averages (NaN where undefined); see `official_score`."""
    if ranking == "dcase2022":
        return ranked_values(results)
    if ranking == "dcase2021":
        return [r.auc_domain[d] for d in DOMAINS for r in results] + [
            r.pauc_domain[d] for d in DOMAINS for r in results
        ]
    if ranking == "dcase2020":
        return [r.auc_domain["source"] for r in results] + [r.pauc_domain["source"] for r in results]
    raise ValueError(f"unknown ranking {ranking!r}; valid: dcase2020, dcase2021, dcase2022")


def official_score(results: list[SectionMetrics], ranking: str = "dcase2022") -> float:
    """The challenge ranking score over all sections of all machine types, over the defined values
    (NaN if none is defined).

    Args:
        ranking: `dcase2022` (2022 onward: harmonic mean of AUC (source), AUC (target), pAUC),
            `dcase2021` (harmonic mean of domain-only AUC and pAUC), `dcase2020` (arithmetic mean
            of AUC and pAUC; 2020 had source clips only).
    """
    values = score_values(results, ranking)
    return amean(values) if ranking == "dcase2020" else hmean(values)


def ranking_for_year(year: int) -> str:
    """The ranking a year's challenge used."""
    return "dcase2020" if year <= 2020 else "dcase2021" if year == 2021 else "dcase2022"


def jackknife_ci95(is_anomaly: np.ndarray, scores: np.ndarray, max_fpr: float | None = None) -> float:
    """Half-width of the 95 % jackknife confidence interval of the (p)AUC over pooled clips, as the
    evaluator reports next to the official score (Mesaros et al., TASLP 2019, sec. IV)."""
    is_anomaly = np.asarray(is_anomaly, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    n = len(scores)
    if min(is_anomaly.sum(), (~is_anomaly).sum()) < 2:
        return float("nan")  # leaving out the only clip of a class leaves an undefined AUC
    keep = np.ones(n, dtype=bool)
    leave_one_out = np.empty(n)
    for i in range(n):
        keep[i] = False
        leave_one_out[i] = skm.roc_auc_score(is_anomaly[keep], scores[keep], max_fpr=max_fpr)
        keep[i] = True
    sigma = np.sqrt(np.sum((leave_one_out - leave_one_out.mean()) ** 2) / (n * (n - 1)))
    return float(abs(scipy.stats.t.ppf(0.025, n - 1)) * sigma)


def _auc(is_anomaly: np.ndarray, scores: np.ndarray, max_fpr: float | None = None) -> float:
    if is_anomaly.all() or not is_anomaly.any():
        return float("nan")
    return float(skm.roc_auc_score(is_anomaly, scores, max_fpr=max_fpr))


def _prf(is_anomaly: np.ndarray, decisions: np.ndarray) -> tuple[float, float, float]:
    if is_anomaly.size == 0:
        return float("nan"), float("nan"), float("nan")
    tp = float(np.sum(is_anomaly & (decisions == 1)))
    fp = float(np.sum(~is_anomaly & (decisions == 1)))
    fn = float(np.sum(is_anomaly & (decisions == 0)))
    precision = tp / max(tp + fp, EPS)
    recall = tp / max(tp + fn, EPS)
    return precision, recall, 2.0 * precision * recall / max(precision + recall, EPS)
