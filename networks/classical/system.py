"""The fast CPU system: clip-level log-mel statistics scored by scikit-learn novelty detectors.

Reads clips through the feature cache; `save` writes `classical.joblib` (the fitted scaler and
detectors). One model per machine type. Scorers:
- knn: distance to the k-th nearest training clip (leave-one-out for the training scores);
- lof: Local Outlier Factor (novelty mode);
- iforest: Isolation Forest;
- gaussian: Mahalanobis distance to a Gaussian fitted to the training clips (Ledoit-Wolf shrunk
  covariance by default, because a section has few clips per dimension in the target domain).
All four are fitted by `fit`, so the scorer can be chosen at test time.
"""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler

from datasets.audio import require_training_clips
from datasets.feature_cache import cached_log_mels
from datasets.manifest import Clip
from networks.system import RunContext, System
from core.atomic import atomic_path

STATISTICS = {
    "mean": lambda x: x.mean(axis=0),
    "std": lambda x: x.std(axis=0),
    "max": lambda x: x.max(axis=0),
    "min": lambda x: x.min(axis=0),
    "median": lambda x: np.median(x, axis=0),
}
MODEL_FILE = "classical.joblib"


def clip_statistics(log_mel: np.ndarray, statistics: list[str]) -> np.ndarray:
    """[n_mels * len(statistics)] summary of one [frames, n_mels] log-mel spectrogram."""
    unknown = [s for s in statistics if s not in STATISTICS]
    if unknown:
        raise KeyError(f"unknown classical.statistics {unknown}; valid: {', '.join(STATISTICS)}")
    return np.concatenate([STATISTICS[s](log_mel) for s in statistics]).astype(np.float32)


class ClassicalSystem(System):
    scope = "machine"
    scorers = ("knn", "lof", "iforest", "gaussian")

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.scaler_: StandardScaler | None = None
        self.detectors_: dict[str, object] = {}

    def _vectors(self, clips: list[Clip], training: bool) -> tuple[list[Clip], np.ndarray]:
        cfg = self.ctx.cfg
        kept, log_mels = cached_log_mels(clips, cfg.data, cfg.feature, self.ctx.expected_channels, allow_skip=training,
                                         desc="log-mel (train)" if training else "log-mel (test)")
        require_training_clips(kept)
        return kept, np.stack([clip_statistics(x, cfg.classical.statistics) for x in log_mels])

    def fit(self, clips: list[Clip], workdir: Path) -> "ClassicalSystem":
        cfg = self.ctx.cfg.classical
        self.train_clips_, vectors = self._vectors(clips, training=True)
        self.scaler_ = StandardScaler().fit(vectors)
        x = self.scaler_.transform(vectors)
        n = len(x)
        k = min(cfg.n_neighbors, n - 1)
        if k < 1:
            raise RuntimeError("the classical detectors need at least two training clips")
        self.detectors_ = {
            "knn": NearestNeighbors(n_neighbors=k).fit(x),
            "lof": LocalOutlierFactor(n_neighbors=min(cfg.lof_neighbors, n - 1), novelty=True).fit(x),
            "iforest": IsolationForest(n_estimators=cfg.iforest_trees, random_state=self.ctx.cfg.run.seed).fit(x),
            "gaussian": (LedoitWolf() if cfg.covariance_shrinkage else EmpiricalCovariance()).fit(x),
        }
        # k+1 neighbours, the first being the clip itself: leave-one-out distances.
        self.train_scores_ = {
            "knn": self.detectors_["knn"].kneighbors(x, n_neighbors=k + 1)[0][:, -1],
            "lof": -self.detectors_["lof"].negative_outlier_factor_,
            "iforest": -self.detectors_["iforest"].score_samples(x),
            "gaussian": self.detectors_["gaussian"].mahalanobis(x),
        }
        return self

    def score(self, clips: list[Clip], scorer: str) -> np.ndarray:
        _, vectors = self._vectors(clips, training=False)
        x = self.scaler_.transform(vectors)
        detector = self.detectors_[scorer]
        if scorer == "knn":
            return detector.kneighbors(x)[0][:, -1]
        if scorer == "gaussian":
            return detector.mahalanobis(x)
        return -detector.score_samples(x)

    def save(self, model_dir: Path) -> None:
        with atomic_path(model_dir / MODEL_FILE) as tmp:
            joblib.dump({"scaler": self.scaler_, "detectors": self.detectors_}, tmp)

    @classmethod
    def load(cls, model_dir: Path, ctx: RunContext) -> "ClassicalSystem":
        state = joblib.load(model_dir / MODEL_FILE)
        system = cls(ctx)
        system.scaler_, system.detectors_ = state["scaler"], state["detectors"]
        return system
