"""The fast CPU system: clip-level log-mel statistics scored by scikit-learn novelty detectors.

Reads clips through the feature cache; `save` writes `classical.joblib` (the parameters, the fitted
scaler and detectors). One model per machine type. Scorers:
- knn: distance to the k-th nearest training clip (leave-one-out for the training scores);
- lof: Local Outlier Factor (novelty mode);
- iforest: Isolation Forest;
- gaussian: Mahalanobis distance to a Gaussian fitted to the training clips (Ledoit-Wolf shrunk
  covariance by default, because a section has few clips per dimension in the target domain).
All four are fitted by `fit`, so the scorer can be chosen at test time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
from sklearn.covariance import EmpiricalCovariance, LedoitWolf
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler

from core.atomic import atomic_path
from core.config import ClassicalConfig, FeatureConfig
from datasets.audio import AudioError, require_training_clips
from datasets.feature_cache import cached_log_mels
from datasets.manifest import Clip
from networks.system import AudioInput, ModelFileError, Runtime, System

STATISTICS = {
    "mean": lambda x: x.mean(axis=0),
    "std": lambda x: x.std(axis=0),
    "max": lambda x: x.max(axis=0),
    "min": lambda x: x.min(axis=0),
    "median": lambda x: np.median(x, axis=0),
}
log = logging.getLogger(__name__)

MODEL_FILE = "classical.joblib"
FORMAT_VERSION = 2  # 2: parameters stored with the detectors


def clip_statistics(log_mel: np.ndarray, statistics: list[str]) -> np.ndarray:
    """[n_mels * len(statistics)] summary of one [frames, n_mels] log-mel spectrogram."""
    return np.concatenate([STATISTICS[s](log_mel) for s in statistics]).astype(np.float32)


def _knn(detector: NearestNeighbors, x: np.ndarray) -> np.ndarray:
    return detector.kneighbors(x)[0][:, -1]


# Scorer -> anomaly scores of the fitted detector on standardised vectors (higher = more anomalous).
SCORERS: dict[str, Callable[[object, np.ndarray], np.ndarray]] = {
    "knn": _knn,
    "lof": lambda detector, x: -detector.score_samples(x),
    "iforest": lambda detector, x: -detector.score_samples(x),
    "gaussian": lambda detector, x: detector.mahalanobis(x),
}


class ClassicalSystem(System):
    section = "classical"
    scope = "machine"
    scorers = tuple(SCORERS)

    def __init__(self, settings: ClassicalConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.scaler_: StandardScaler | None = None
        self.detectors_: dict[str, object] = {}

    def _vectors(self, clips: list[Clip], runtime: Runtime, training: bool) -> tuple[list[Clip], np.ndarray]:
        kept, log_mels = cached_log_mels(
            clips,
            runtime.data,
            self.feature,
            runtime.expected_channels,
            allow_skip=training,
            desc="log-mel (train)" if training else "log-mel (test)",
        )
        require_training_clips(kept)
        # A clip shorter than one analysis window has only padded frames: its statistics describe
        # the padding more than the sound. It still gets a score (a submission needs one), with a warning.
        window_frames = self.feature.n_fft // self.feature.hop_length
        for clip, x in zip(kept, log_mels):
            if len(x) <= window_frames:
                log.warning(
                    "%s: %d frames, shorter than one %d-sample analysis window (feature.n_fft): its clip "
                    "statistics are unreliable",
                    clip.path,
                    len(x),
                    self.feature.n_fft,
                )
        return kept, np.stack([clip_statistics(x, self.settings.statistics) for x in log_mels])

    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> ClassicalSystem:
        cfg = self.settings
        self.train_clips_, vectors = self._vectors(clips, runtime, training=True)
        self.scaler_ = StandardScaler().fit(vectors)
        x = self.scaler_.transform(vectors)
        n = len(x)
        k = min(cfg.n_neighbors, n - 1)
        if k < 1:
            raise AudioError("the classical detectors need at least two training clips")
        self.detectors_ = {
            "knn": NearestNeighbors(n_neighbors=k).fit(x),
            "lof": LocalOutlierFactor(n_neighbors=min(cfg.lof_neighbors, n - 1), novelty=True).fit(x),
            "iforest": IsolationForest(n_estimators=cfg.iforest_trees, random_state=self.seed).fit(x),
            "gaussian": (LedoitWolf() if cfg.covariance_shrinkage else EmpiricalCovariance()).fit(x),
        }
        # k+1 neighbours, the first being the clip itself: leave-one-out distances.
        self.train_scores_ = {
            "knn": self.detectors_["knn"].kneighbors(x, n_neighbors=k + 1)[0][:, -1],
            "lof": -self.detectors_["lof"].negative_outlier_factor_,
            "iforest": SCORERS["iforest"](self.detectors_["iforest"], x),
            "gaussian": SCORERS["gaussian"](self.detectors_["gaussian"], x),
        }
        return self

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        _, vectors = self._vectors(clips, runtime, training=False)
        return SCORERS[scorer](self.detectors_[scorer], self.scaler_.transform(vectors))

    def save(self, model_dir: Path) -> None:
        with atomic_path(Path(model_dir) / MODEL_FILE) as tmp:
            joblib.dump(
                {
                    "format": FORMAT_VERSION,
                    "params": self.get_params(),
                    "scaler": self.scaler_,
                    "detectors": self.detectors_,
                },
                tmp,
            )

    @classmethod
    def load(cls, model_dir: Path) -> ClassicalSystem:
        path = Path(model_dir) / MODEL_FILE
        if not path.is_file():
            raise ModelFileError(f"model file {path} is missing")
        try:
            state = joblib.load(path)
        except Exception as e:  # joblib/pickle raise many types for a truncated or foreign file
            raise ModelFileError(f"model file {path} is damaged or incomplete ({type(e).__name__})") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"model file {path} was written by another version of this system")
        system = cls.from_params(state["params"], ClassicalConfig)
        system.scaler_, system.detectors_ = state["scaler"], state["detectors"]
        return system
