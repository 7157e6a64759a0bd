"""The scorers of the auxiliary system, fitted on one trained network's training embeddings and
class logits, standardised per section (`networks.section_standardiser`) so that an ensemble can average them.

Reads embeddings `[clips, dim]`, class logits `[clips, classes]` and each clip's machine,
section and (training) domain; writes scores `[clips]`, higher = more anomalous. Holds its state
in numpy arrays (`state_dict`).

Scorers:
- knn: the smaller standardised cosine k-NN distance to the section's source and target
  training embeddings (`networks.knn_scoring`);
- mahala: the same with squared Mahalanobis distances to per-domain Gaussians
  (`networks.mahalanobis.SectionGaussians`);
- softmax: 1 - the probability the classifier gives to the clip's own machine and section,
  summed over its attribute classes (needs no attributes: evaluation clips have none).
Every member's scores are standardised per section by the mean and standard deviation of its
training clips' scores, so members (and sections) are on one scale before they are averaged.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.special import logsumexp

from networks.knn_scoring import SectionKnn
from networks.mahalanobis import SectionGaussians
from networks.section_banks import group_indices
from networks.section_standardiser import Section, SectionStandardiser, missing_section

log = logging.getLogger(__name__)

SCORERS = ("knn", "mahala", "softmax")


def softmax_scores(
    logits: np.ndarray, class_sections: list[Section], machines: list[str], sections: list[str]
) -> np.ndarray:
    """`[n]` 1 - the summed softmax probability of the classes of each clip's own section.

    Computed as the probability of all other classes (log-sum-exp in float64), which keeps its
    precision where the classifier is confident and the score is tiny.

    Args:
        logits: [n, classes] class logits.
        class_sections: (machine, section) of each class.
    """
    logits = np.asarray(logits, dtype=np.float64)
    total = logsumexp(logits, axis=1)
    owner = np.array([f"{m}/{s}" for m, s in class_sections])
    scores = np.empty(len(logits))
    for (machine, section), idx in group_indices(zip(machines, sections)).items():
        others = owner != f"{machine}/{section}"
        if others.all():
            raise missing_section(machine, section, set(class_sections))
        if not others.any():  # a single section: every probability is its own
            scores[idx] = 0.0
            continue
        scores[idx] = np.exp(logsumexp(logits[np.ix_(idx, np.flatnonzero(others))], axis=1) - total[idx])
    return scores


class MemberScorers:
    """Every scorer of one trained network (sklearn-style `fit`/`score`).

    Args:
        knn_k: neighbours of the knn scorer; ridge: covariance loading of the mahala scorer.

    Attributes (after `fit`):
        knn_, mahala_: the fitted bank scorers.
        class_sections_: (machine, section) of each class, for the softmax scorer.
        standardisers_: scorer -> its per-section standardisation.
        train_scores_: scorer -> [clips] standardised training scores (left out of their own banks).
    """

    def __init__(self, knn_k: int, ridge: float) -> None:
        self.knn_k = knn_k
        self.ridge = ridge

    def fit(
        self,
        embeddings: np.ndarray,
        logits: np.ndarray,
        machines: list[str],
        sections: list[str],
        domains: list[str],
        class_sections: list[Section],
    ) -> MemberScorers:
        self.knn_ = SectionKnn(self.knn_k).fit(embeddings, machines, sections, domains)
        self.mahala_ = SectionGaussians(self.ridge).fit(embeddings, machines, sections, domains)
        self.class_sections_ = list(class_sections)
        if len(set(class_sections)) == 1:
            log.warning("the training clips form a single machine section: the softmax scorer gives every clip 0")
        raw = {
            "knn": self.knn_.train_scores_,
            "mahala": self.mahala_.train_scores_,
            "softmax": softmax_scores(logits, self.class_sections_, machines, sections),
        }
        self.standardisers_ = {name: SectionStandardiser().fit(raw[name], machines, sections) for name in SCORERS}
        self.train_scores_ = {
            name: self.standardisers_[name].transform(raw[name], machines, sections) for name in SCORERS
        }
        return self

    def score(
        self, scorer: str, embeddings: np.ndarray, logits: np.ndarray, machines: list[str], sections: list[str]
    ) -> np.ndarray:
        """[n] standardised scores of new clips."""
        if scorer == "knn":
            raw = self.knn_.score(embeddings, machines, sections)
        elif scorer == "mahala":
            raw = self.mahala_.score(embeddings, machines, sections)
        elif scorer == "softmax":
            raw = softmax_scores(logits, self.class_sections_, machines, sections)
        else:
            raise KeyError(f"unknown scorer {scorer!r}; valid: {', '.join(SCORERS)}")
        return self.standardisers_[scorer].transform(raw, machines, sections)

    def state_dict(self) -> dict:
        return {
            "knn": self.knn_.state_dict(),
            "mahala": self.mahala_.state_dict(),
            "class_sections": [list(key) for key in self.class_sections_],
            "standardisers": {name: s.state_dict() for name, s in self.standardisers_.items()},
            "train_scores": self.train_scores_,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> MemberScorers:
        knn = SectionKnn.from_state_dict(state["knn"])
        mahala = SectionGaussians.from_state_dict(state["mahala"])
        scorers = cls(knn.k, mahala.ridge)
        scorers.knn_, scorers.mahala_ = knn, mahala
        scorers.class_sections_ = [tuple(key) for key in state["class_sections"]]
        scorers.standardisers_ = {
            name: SectionStandardiser.from_state_dict(stats) for name, stats in state["standardisers"].items()
        }
        scorers.train_scores_ = {name: np.asarray(v) for name, v in state["train_scores"].items()}
        return scorers
