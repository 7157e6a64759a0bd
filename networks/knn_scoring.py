"""Anomaly scores from clip embeddings: cosine k-NN to per-section source and target banks.

Reads embeddings `[clips, dim]` with each clip's machine, section and (training) domain; writes
scores `[clips]`, higher = more anomalous. Holds its state in numpy arrays (`state_dict`).

Per (machine, section) the training embeddings form one bank per domain (source: many clips,
target: a handful). A clip's distance to a bank is the mean cosine distance to its `k` nearest
members. Distances to a small bank are larger merely because it is small, so each bank's
distances are standardised with the mean and standard deviation of its own members'
leave-one-out distances (each member against the others); the score is the smaller
standardised distance over the banks, so a clip close to either domain is normal.

Written with numpy rather than sklearn's NearestNeighbors: leave-one-out must exclude a
member by index, which the "query k + 1 and drop the first" idiom gets wrong for duplicate clips.
"""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np

log = logging.getLogger(__name__)

STD_FLOOR = 1e-6
BLOCK = 4096  # query rows per distance matrix (bounded memory for large banks)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_distance(queries: np.ndarray, bank: np.ndarray, k: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine distance of each query to its `k` nearest bank members.

    Args:
        queries: [n, dim] unit vectors; bank: [m, dim] unit vectors.
        exclude: [n] index of a bank member each query must not count (itself), or None.

    Returns:
        [n] float64.
    """
    out = np.empty(len(queries))
    for start in range(0, len(queries), BLOCK):
        distances = 1.0 - queries[start:start + BLOCK] @ bank.T
        if exclude is not None:
            rows = np.arange(len(distances))
            distances[rows, exclude[start:start + BLOCK]] = np.inf
        nearest = np.partition(distances, k - 1, axis=1)[:, :k]
        out[start:start + BLOCK] = nearest.mean(axis=1)
    return out


class SectionKnn:
    """Per-section, per-domain cosine k-NN banks with leave-one-out standardisation (sklearn-style)."""

    def __init__(self, k: int = 1) -> None:
        if k < 1:
            raise ValueError(f"beats.knn_k must be at least 1, got {k}")
        self.k = k
        self.banks_: dict[tuple[str, str, str], np.ndarray] = {}
        self.stats_: dict[tuple[str, str, str], tuple[float, float, int]] = {}  # mean, std, k used
        self.train_scores_: np.ndarray = np.zeros(0)

    def _k(self, size: int) -> int:
        # A bank of n clips has n - 1 leave-one-out neighbours; test clips use the same k so
        # their distances are comparable with the statistics.
        return max(1, min(self.k, size - 1))

    def fit(self, embeddings: np.ndarray, machines: list[str], sections: list[str], domains: list[str]) -> "SectionKnn":
        """Build the banks from training embeddings; sets `train_scores_` (leave-one-out)."""
        x = _normalise(embeddings)
        members: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(machines, sections, domains)):
            members[key].append(i)
        self.banks_ = {key: x[idx] for key, idx in members.items()}
        self.stats_ = {}
        for key, idx in members.items():
            k = self._k(len(idx))
            if len(idx) < 2:
                log.warning("k-NN bank %s has a single clip: its distances cannot be standardised", "/".join(key))
                self.stats_[key] = (0.0, 1.0, k)
                continue
            own = knn_distance(x[idx], self.banks_[key], k, exclude=np.arange(len(idx)))
            self.stats_[key] = (float(own.mean()), float(max(own.std(), STD_FLOOR)), k)
        scores = np.full(len(x), np.inf)
        for (machine, section, domain), idx in members.items():
            for key in self._section_banks(machine, section):
                exclude = np.arange(len(idx)) if key[2] == domain else None
                scores[idx] = np.minimum(scores[idx], self._standardised(x[idx], key, exclude))
        self.train_scores_ = scores
        return self

    def _section_banks(self, machine: str, section: str) -> list[tuple[str, str, str]]:
        keys = sorted(key for key in self.banks_ if key[:2] == (machine, section))
        if not keys:
            known = sorted({f"{m} section {s}" for m, s, _ in self.banks_})
            raise KeyError(f"{machine} section {section} has no training clips (trained sections: {', '.join(known)})")
        return keys

    def _standardised(self, queries: np.ndarray, key: tuple[str, str, str], exclude: np.ndarray | None) -> np.ndarray:
        mean, std, k = self.stats_[key]
        return (knn_distance(queries, self.banks_[key], k, exclude) - mean) / std

    def score(self, embeddings: np.ndarray, machines: list[str], sections: list[str]) -> np.ndarray:
        """[n] scores of new clips: the smaller standardised k-NN distance to the banks of their section."""
        x = _normalise(embeddings)
        scores = np.full(len(x), np.inf)
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, key in enumerate(zip(machines, sections)):
            groups[key].append(i)
        for (machine, section), idx in groups.items():
            for key in self._section_banks(machine, section):
                scores[idx] = np.minimum(scores[idx], self._standardised(x[idx], key, None))
        return scores

    def state_dict(self) -> dict:
        return {"k": self.k, "banks": {"/".join(key): bank for key, bank in self.banks_.items()},
                "stats": {"/".join(key): list(value) for key, value in self.stats_.items()},
                "train_scores": self.train_scores_}

    @classmethod
    def from_state_dict(cls, state: dict) -> "SectionKnn":
        knn = cls(int(state["k"]))
        knn.banks_ = {tuple(key.split("/")): np.asarray(bank) for key, bank in state["banks"].items()}
        knn.stats_ = {tuple(key.split("/")): (float(v[0]), float(v[1]), int(v[2])) for key, v in state["stats"].items()}
        knn.train_scores_ = np.asarray(state["train_scores"])
        return knn
