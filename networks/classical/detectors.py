"""The classical system's novelty detectors (scikit-learn), and each one's scores of its own
training clips with no clip voting for itself. Reads and writes nothing.

- knn: Euclidean distance to the k-th nearest training clip; a training clip's own score is its
  distance to the k-th nearest other clip (scikit-learn leaves a clip out by index);
- lof: Local Outlier Factor (novelty mode); a training clip's own score is the outlier factor
  scikit-learn computes for it among the others;
- iforest: Isolation Forest;
- gaussian: squared Mahalanobis distance under a Ledoit-Wolf shrunk (or the empirical)
  covariance; in a target-domain bank with `classical.target_prior` > 0, under the target
  covariance shrunk towards the section's source covariance instead (`PriorGaussian`): ten
  target clips say where the target condition lies, far less about its spread.
iforest and gaussian have no cheap exact leave-one-out, so their own scores are cross-fitted:
each clip is scored by a model fitted without its fold: one clip per fold in a bank of at most
`LEAVE_ONE_OUT_UP_TO` clips (the target banks, where one clip more or less changes a model),
`CROSS_FIT_FOLDS` folds in a larger one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.linalg import pinvh
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import KFold
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors

from core.config import ClassicalConfig

LEAVE_ONE_OUT_UP_TO = 20
CROSS_FIT_FOLDS = 5


class PriorGaussian:
    """A Gaussian whose covariance is the clips' own, shrunk towards a prior covariance:
    `(n * S + weight * prior) / (n + weight)` for n clips of (maximum-likelihood) covariance S,
    i.e. the prior counts as `weight` clips (sklearn-style `fit`, `mahalanobis`).

    Attributes (after `fit`): location_ [dim], covariance_ [dim, dim], precision_ [dim, dim].
    """

    def __init__(self, prior: np.ndarray, weight: float) -> None:
        self.prior = prior
        self.weight = weight

    def fit(self, x: np.ndarray) -> PriorGaussian:
        n = len(x)
        self.location_ = x.mean(axis=0)
        centred = x - self.location_
        self.covariance_ = (centred.T @ centred + self.weight * self.prior) / (n + self.weight)
        self.precision_ = pinvh(self.covariance_)
        return self

    def mahalanobis(self, x: np.ndarray) -> np.ndarray:
        """[n] squared Mahalanobis distances of [n, dim] vectors."""
        centred = x - self.location_
        return np.einsum("ni,ij,nj->n", centred, self.precision_, centred)


@dataclass(frozen=True)
class Detector:
    """How to build, score and self-score one kind of detector."""

    # (settings, seed, clips it will be fitted on, the fitted source-domain detector of the same
    # section and feature group when this is a target-domain bank, else None) -> unfitted detector
    make: Callable[[ClassicalConfig, int, int, object | None], object]
    score: Callable[[object, np.ndarray], np.ndarray]  # fitted detector, [n, dim] -> [n], higher = more anomalous
    # fitted detector -> [clips] its training clips' scores, each without itself; None: cross-fitted
    own_scores: Callable[[object], np.ndarray] | None


def _gaussian(settings: ClassicalConfig, seed: int, n: int, source: object | None) -> object:
    if source is not None and settings.target_prior > 0:
        return PriorGaussian(source.covariance_, settings.target_prior)
    return LedoitWolf() if settings.covariance_shrinkage else EmpiricalCovariance()


DETECTORS: dict[str, Detector] = {
    "knn": Detector(
        make=lambda settings, seed, n, source: NearestNeighbors(n_neighbors=min(settings.n_neighbors, n - 1)),
        score=lambda detector, x: detector.kneighbors(x)[0][:, -1],
        own_scores=lambda detector: detector.kneighbors()[0][:, -1],
    ),
    "lof": Detector(
        make=lambda settings, seed, n, source: LocalOutlierFactor(
            n_neighbors=min(settings.lof_neighbors, n - 1), novelty=True
        ),
        score=lambda detector, x: -detector.score_samples(x),
        own_scores=lambda detector: -detector.negative_outlier_factor_,
    ),
    "iforest": Detector(
        make=lambda settings, seed, n, source: IsolationForest(n_estimators=settings.iforest_trees, random_state=seed),
        score=lambda detector, x: -detector.score_samples(x),
        own_scores=None,
    ),
    "gaussian": Detector(make=_gaussian, score=lambda detector, x: detector.mahalanobis(x), own_scores=None),
}


def fit_detector(
    name: str, settings: ClassicalConfig, seed: int, x: np.ndarray, source: object | None
) -> tuple[object, np.ndarray]:
    """Fit detector `name` on `x` ([clips, dim], at least 3 clips).

    Returns:
        The fitted detector and [clips] its training clips' scores, each clip left out (knn, lof)
        or scored by a model fitted without its fold (iforest, gaussian).
    """
    spec = DETECTORS[name]
    detector = spec.make(settings, seed, len(x), source).fit(x)
    if spec.own_scores is not None:
        return detector, spec.own_scores(detector)
    own = np.empty(len(x))
    n_splits = len(x) if len(x) <= LEAVE_ONE_OUT_UP_TO else CROSS_FIT_FOLDS
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for rest, fold in folds.split(x):
        own[fold] = spec.score(spec.make(settings, seed, len(rest), source).fit(x[rest]), x[fold])
    return detector, own
