"""Training-time anomaly scores -> the decision threshold of the official baseline.

A gamma distribution (shape, location and scale all free) is fitted to the anomaly scores of the
normal training clips of a section; the threshold is its `quantile` (0.9 by default). A new
clip's score can also be read as its percentile among those training scores. Pure functions;
nothing is read or written.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import scipy.stats

log = logging.getLogger(__name__)


def gamma_threshold(train_scores: np.ndarray, quantile: float) -> float:
    """The `quantile` of a gamma distribution fitted to `train_scores` ([clips] float).

    Falls back to the empirical quantile, with a warning, when the fit is impossible or
    meaningless (fewer than three distinct scores, or a non-finite result).
    """
    scores = np.asarray(train_scores, dtype=float)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"decision.threshold_quantile must lie in (0, 1), got {quantile}")
    if scores.size == 0:
        raise ValueError("no training scores to fit a decision threshold to")
    if np.unique(scores).size >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            shape, loc, scale = scipy.stats.gamma.fit(scores)
            threshold = float(scipy.stats.gamma.ppf(quantile, shape, loc=loc, scale=scale))
        if np.isfinite(threshold):
            return threshold
    log.warning(
        "gamma fit impossible on %d training scores; using their empirical %.2f quantile", scores.size, quantile
    )
    return float(np.quantile(scores, quantile))


def decide(scores: np.ndarray, threshold: float) -> np.ndarray:
    """[clips] 0/1 decisions: 1 (anomalous) where the score exceeds the threshold."""
    return (np.asarray(scores) > threshold).astype(int)


def section_thresholds(
    train_scores: dict[tuple[str, str], np.ndarray], quantile: float
) -> dict[tuple[str, str], float]:
    """(machine, section) -> the gamma threshold of that section's [clips] training scores."""
    return {key: gamma_threshold(values, quantile) for key, values in train_scores.items()}


def training_percentiles(train_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """[clips] percentage (0-100) of the [train clips] training scores at or below each score: 50
    is a typical normal clip, 100 a clip scored above every training clip."""
    return np.atleast_1d(scipy.stats.percentileofscore(train_scores, np.asarray(scores), kind="weak"))
