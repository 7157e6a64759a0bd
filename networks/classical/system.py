"""The fast CPU system: clip-level features scored by scikit-learn novelty detectors.

Reads clips through the feature cache (`networks.classical.features`: log-mel statistics,
modulation spectra, impulsiveness, the long-term spectrum); `save` writes `classical.joblib` (the
parameters, the fitted scalers and detector banks). One model per machine type; inside it, per
section, one detector per domain (`classical.domains: separate`; a clip's score is the smaller of
its standardised scores) or one for both (`pooled`), on each feature group (`classical.combine:
mean` averages the groups' standardised scores) or on all groups at once (`concat`). Scorers
(`networks.classical.detectors`): knn, lof, iforest, gaussian; all are fitted by `fit`, so the
scorer can be chosen at test time.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
from sklearn.preprocessing import StandardScaler

from core.atomic import atomic_path
from core.config import ClassicalConfig, FeatureConfig
from datasets.audio import AudioError, require_training_clips
from datasets.manifest import Clip
from networks.classical.banks import DetectorBanks
from networks.classical.detectors import DETECTORS
from networks.classical.features import group_vectors
from networks.system import AudioInput, ModelFileError, Runtime, System

log = logging.getLogger(__name__)

MODEL_FILE = "classical.joblib"
FORMAT_VERSION = 3  # 3: feature groups, per-section (and per-domain) detector banks
MIN_BANK_CLIPS = 3  # a detector's held-out scores need a bank of at least three clips
POOLED = "pooled"  # the domain label of every clip when the domains are pooled


class ClassicalSystem(System):
    section = "classical"
    scope = "machine"
    scorers = tuple(DETECTORS)

    def __init__(self, settings: ClassicalConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.scalers_: list[StandardScaler] = []
        self.banks_: dict[str, DetectorBanks] = {}

    def _vectors(self, clips: list[Clip], runtime: Runtime, training: bool) -> tuple[list[Clip], list[np.ndarray]]:
        kept, groups = group_vectors(clips, runtime, self.settings, self.feature, training)
        require_training_clips(kept)
        if self.settings.combine == "concat":
            groups = [np.concatenate(groups, axis=1)]
        return kept, groups

    def _standardised(self, groups: list[np.ndarray]) -> np.ndarray:
        """[clips, dims of all groups] float64: each group standardised by its scaler, side by side."""
        return np.concatenate([scaler.transform(x) for scaler, x in zip(self.scalers_, groups)], axis=1)

    def _domains(self, clips: list[Clip]) -> list[str]:
        """Each training clip's bank: its domain (separate) or one for all (pooled). A domain with
        too few clips in a section to fit a detector of its own joins the section's other clips."""
        if self.settings.domains == POOLED:
            return [POOLED] * len(clips)
        counts = Counter((c.machine, c.section, c.domain) for c in clips)
        small = {key for key, n in counts.items() if n < MIN_BANK_CLIPS}
        for machine, section, domain in sorted(small):
            log.warning(
                "%s section %s has %d %s-domain training clip(s), fewer than %d: they join the section's "
                "other clips in one model",
                machine,
                section,
                counts[(machine, section, domain)],
                domain,
                MIN_BANK_CLIPS,
            )
        pooled_sections = {(m, s) for m, s, _ in small}
        return [POOLED if (c.machine, c.section) in pooled_sections else c.domain for c in clips]

    def fit(
        self, clips: list[Clip], runtime: Runtime, workdir: Path, detectors: tuple[str, ...] = tuple(DETECTORS)
    ) -> ClassicalSystem:
        """Fit every detector (`detectors`: only these, for a benchmark that compares a few)."""
        self.train_clips_, groups = self._vectors(clips, runtime, training=True)
        sections = Counter((c.machine, c.section) for c in self.train_clips_)
        if min(sections.values()) < MIN_BANK_CLIPS:
            (machine, section), n = min(sections.items(), key=lambda item: item[1])
            raise AudioError(
                f"{machine} section {section} has {n} training clip(s): the classical detectors need at "
                f"least {MIN_BANK_CLIPS} per section"
            )
        self.scalers_ = [StandardScaler().fit(x) for x in groups]
        x = self._standardised(groups)
        ends = np.cumsum([g.shape[1] for g in groups])
        columns = [slice(int(end - g.shape[1]), int(end)) for end, g in zip(ends, groups)]
        machines = [c.machine for c in self.train_clips_]
        section_names = [c.section for c in self.train_clips_]
        domains = self._domains(self.train_clips_)
        self.banks_ = {
            name: DetectorBanks(name, self.settings, columns, self.seed).fit(x, machines, section_names, domains)
            for name in detectors
        }
        self.train_scores_ = {name: banks.train_scores_ for name, banks in self.banks_.items()}
        return self

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        _, groups = self._vectors(clips, runtime, training=False)
        return self.banks_[scorer].score(
            self._standardised(groups), [c.machine for c in clips], [c.section for c in clips]
        )

    def save(self, model_dir: Path) -> None:
        with atomic_path(Path(model_dir) / MODEL_FILE) as tmp:
            joblib.dump(
                {"format": FORMAT_VERSION, "params": self.get_params(), "scalers": self.scalers_, "banks": self.banks_},
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
        system.scalers_, system.banks_ = state["scalers"], state["banks"]
        return system
