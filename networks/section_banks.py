"""Anomaly scores from clip embeddings, per section and domain: the shared part of the k-NN and
Gaussian (Mahalanobis) scorers.

Reads embeddings `[clips, dim]` with each clip's machine, section and (training) domain; writes
scores `[clips]`, higher = more anomalous. Holds its state in numpy arrays.

Per (machine, section) the training embeddings form one bank per domain (source: many clips,
target: a handful). A scorer defines a clip's distance to a bank (`_distances`). Distances to a
small bank are larger merely because it is small, so each bank's distances are standardised with
the mean and standard deviation of its own members' leave-one-out distances (each member against
the bank without it); the score is the smaller standardised distance over the section's banks, so
a clip close to either domain is normal. A training clip's own score leaves it out of its bank.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import defaultdict

import numpy as np

log = logging.getLogger(__name__)

STD_FLOOR = 1e-6
BankKey = tuple[str, str, str]  # machine, section, domain


def group_indices(keys) -> dict[tuple, list[int]]:
    """Positions of each distinct key, in first-seen order."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    return dict(groups)


class SectionBanks(ABC):
    """Per-section, per-domain banks with leave-one-out standardisation (sklearn-style `fit`/`score`).

    Attributes (after `fit`):
        banks_: (machine, section, domain) -> the scorer's summary of that bank's embeddings.
        stats_: (machine, section, domain) -> (mean, std, ...) of the members' leave-one-out distances.
        train_scores_: [clips] the training clips' scores, each left out of its own bank.
    """

    name = "bank"  # for log lines

    def __init__(self) -> None:
        self.banks_: dict[BankKey, object] = {}
        self.stats_: dict[BankKey, tuple] = {}
        self.train_scores_: np.ndarray = np.zeros(0)

    @abstractmethod
    def _prepare(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings `[n, dim]` as the scorer compares them (e.g. unit length), float64."""

    @abstractmethod
    def _fit_bank(self, key: BankKey, members: np.ndarray, everything: np.ndarray) -> object:
        """The summary of bank `key` from its members `[m, dim]` (`everything`: all training embeddings, for fallbacks).
        Banks are fitted in key order, so `self.banks_` already holds the section's source bank when
        its target bank is fitted."""

    @abstractmethod
    def _distances(self, queries: np.ndarray, key: BankKey, leave_out: bool) -> np.ndarray:
        """`[n]` distances of `queries` to the bank `key`; with `leave_out`, the queries are the bank's
        members in order and each is measured against the bank without it (inf where it cannot be)."""

    def _bank_stats(self, key: BankKey, own: np.ndarray) -> tuple:
        """(mean, std) of a bank's finite leave-one-out distances; (0, 1) when fewer than two exist."""
        finite = own[np.isfinite(own)]
        if len(finite) < 2:
            size = "a single clip" if len(own) == 1 else f"{len(own)} clips"
            log.warning("%s bank %s has %s: its distances cannot be standardised", self.name, "/".join(key), size)
            return 0.0, 1.0
        return float(finite.mean()), float(max(finite.std(), STD_FLOOR))

    def fit(self, embeddings: np.ndarray, machines: list[str], sections: list[str], domains: list[str]) -> SectionBanks:
        """Build the banks from training embeddings `[clips, dim]`; sets `train_scores_` (leave-one-out)."""
        x = self._prepare(embeddings)
        members = dict(sorted(group_indices(zip(machines, sections, domains)).items()))
        self.banks_ = {}
        for key, idx in members.items():  # in key order: a target bank may lean on its section's source bank
            self.banks_[key] = self._fit_bank(key, x[idx], x)
        self.stats_ = {
            key: self._bank_stats(key, self._distances(x[idx], key, leave_out=True)) for key, idx in members.items()
        }
        scores = np.full(len(x), np.inf)
        for (machine, section, domain), idx in members.items():
            for key in self._section_banks(machine, section):
                scores[idx] = np.minimum(scores[idx], self._standardised(x[idx], key, leave_out=key[2] == domain))
        self.train_scores_ = scores
        return self

    def _section_banks(self, machine: str, section: str) -> list[BankKey]:
        keys = sorted(key for key in self.banks_ if key[:2] == (machine, section))
        if not keys:
            known = sorted({f"{m} section {s}" for m, s, _ in self.banks_})
            raise KeyError(f"{machine} section {section} has no training clips (trained sections: {', '.join(known)})")
        return keys

    def _standardised(self, queries: np.ndarray, key: BankKey, leave_out: bool) -> np.ndarray:
        mean, std = self.stats_[key][:2]
        return (self._distances(queries, key, leave_out) - mean) / std

    def score(self, embeddings: np.ndarray, machines: list[str], sections: list[str]) -> np.ndarray:
        """[n] scores of new clips: the smaller standardised distance to the banks of their section."""
        x = self._prepare(embeddings)
        scores = np.full(len(x), np.inf)
        for (machine, section), idx in group_indices(zip(machines, sections)).items():
            for key in self._section_banks(machine, section):
                scores[idx] = np.minimum(scores[idx], self._standardised(x[idx], key, leave_out=False))
        return scores
