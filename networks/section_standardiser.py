"""Per-section standardisation of anomaly scores by the training clips' scores, which puts the scores
of different scorers (and sections) on one scale before they are averaged or compared: the
auxiliary system's ensemble of networks and the `ensemble` system's fusion of systems use it.

Reads scores `[clips]` with each clip's machine and section; writes standardised scores `[clips]`.
Holds its state in plain floats (`state_dict`).
"""

from __future__ import annotations

import numpy as np

from networks.section_banks import STD_FLOOR, group_indices

Section = tuple[str, str]  # machine, section


def missing_section(machine: str, section: str, known: set[Section]) -> KeyError:
    """The error for a clip of a section that has no training clips, naming the trained ones."""
    trained = ", ".join(sorted(f"{m} section {s}" for m, s in known))
    return KeyError(f"{machine} section {section} has no training clips (trained sections: {trained})")


class SectionStandardiser:
    """Per-section mean and standard deviation of training scores (finite ones), sklearn-style.

    Attributes (after `fit`):
        stats_: (machine, section) -> (mean, standard deviation, at least `STD_FLOOR`).
    """

    def __init__(self) -> None:
        self.stats_: dict[Section, tuple[float, float]] = {}

    def fit(self, scores: np.ndarray, machines: list[str], sections: list[str]) -> SectionStandardiser:
        for key, idx in group_indices(zip(machines, sections)).items():
            values = scores[idx][np.isfinite(scores[idx])]
            self.stats_[key] = (
                (float(values.mean()), float(max(values.std(), STD_FLOOR))) if len(values) else (0.0, 1.0)
            )
        return self

    def transform(self, scores: np.ndarray, machines: list[str], sections: list[str]) -> np.ndarray:
        """[clips] `(score - mean) / std` of each clip's section; a KeyError names an unknown section."""
        out = np.empty(len(scores))
        for key, idx in group_indices(zip(machines, sections)).items():
            if key not in self.stats_:
                raise missing_section(*key, set(self.stats_))
            mean, std = self.stats_[key]
            out[idx] = (scores[idx] - mean) / std
        return out

    def state_dict(self) -> dict[str, list[float]]:
        """`{"machine/section": [mean, std]}` (machine and section names never hold a `/`)."""
        return {"/".join(key): list(value) for key, value in self.stats_.items()}

    @classmethod
    def from_state_dict(cls, state: dict[str, list[float]]) -> SectionStandardiser:
        standardiser = cls()
        standardiser.stats_ = {tuple(key.split("/")): (float(v[0]), float(v[1])) for key, v in state.items()}
        return standardiser
