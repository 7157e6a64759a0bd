"""One classical detector per section and domain (or per section, pooled), on several feature
groups at once: the classical system's scorer (`networks.section_banks` does the per-bank
standardisation and the smaller-score-wins rule). Reads and writes nothing.

In each bank a detector is fitted to each feature group (a column range of the clip vectors);
a clip's distance to the bank is the mean over the groups of its group scores, each standardised
by the group's own-clip scores (`networks.classical.detectors.fit_detector`: leave-one-out or
cross-fitted), so that a group with large raw scores does not drown the others. The bank's own
clips' distances are those same held-out scores, which `SectionBanks` standardises once more per
bank (the mean of correlated standardised scores has no unit spread) before the smaller
standardised distance over the section's banks wins.
"""

from __future__ import annotations

import numpy as np

from core.config import ClassicalConfig
from networks.classical.detectors import DETECTORS, fit_detector
from networks.section_banks import STD_FLOOR, BankKey, SectionBanks


class DetectorBanks(SectionBanks):
    """Per (machine, section, domain) bank, one fitted `detector` per feature group (sklearn-style).

    Args:
        detector: a name in `networks.classical.detectors.DETECTORS`.
        settings: the `classical` configuration section (the detectors' parameters).
        groups: the column range of each feature group in the clip vectors.
        seed: of the randomised detectors and of the cross-fitting folds.

    `banks_` holds per bank: `detectors` (one per group), `stats` ((mean, std) of each group's
    held-out scores) and `held_out` ([members] the combined held-out distances).
    """

    def __init__(self, detector: str, settings: ClassicalConfig, groups: list[slice], seed: int) -> None:
        if detector not in DETECTORS:
            raise KeyError(f"unknown classical detector {detector!r}; valid: {', '.join(DETECTORS)}")
        super().__init__()
        self.name = detector
        self.settings = settings
        self.groups = groups
        self.seed = seed

    def _prepare(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64)

    def _fit_bank(self, key: BankKey, members: np.ndarray, everything: np.ndarray) -> dict:
        machine, section, domain = key
        source = self.banks_.get((machine, section, "source")) if domain == "target" else None
        detectors, stats, held_out = [], [], []
        for g, columns in enumerate(self.groups):
            detector, own = fit_detector(
                self.name, self.settings, self.seed, members[:, columns], source["detectors"][g] if source else None
            )
            mean, std = float(own.mean()), float(max(own.std(), STD_FLOOR))
            detectors.append(detector)
            stats.append((mean, std))
            held_out.append((own - mean) / std)
        return {"detectors": detectors, "stats": stats, "held_out": np.mean(held_out, axis=0)}

    def _distances(self, queries: np.ndarray, key: BankKey, leave_out: bool) -> np.ndarray:
        bank = self.banks_[key]
        if leave_out:  # the queries are the bank's own members, in order
            return bank["held_out"]
        score = DETECTORS[self.name].score
        return np.mean(
            [
                (score(detector, queries[:, columns]) - mean) / std
                for detector, columns, (mean, std) in zip(bank["detectors"], self.groups, bank["stats"])
            ],
            axis=0,
        )
