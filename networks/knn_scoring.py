"""Anomaly scores from clip embeddings: cosine k-NN to per-section source and target banks.

Reads embeddings `[clips, dim]` with each clip's machine, section and (training) domain; writes
scores `[clips]`, higher = more anomalous. Holds its state in numpy arrays (`state_dict`).

Per (machine, section) the training embeddings form one bank per domain (source: many clips,
target: a handful). A clip's distance to a bank is the mean cosine distance to its `k` nearest
members; each bank's distances are standardised by its members' leave-one-out distances and the
smaller standardised distance over the banks wins (`networks.section_banks`).

Written with numpy rather than sklearn's NearestNeighbors: leave-one-out must exclude a
member by index, which the "query k + 1 and drop the first" idiom gets wrong for duplicate clips.
"""

from __future__ import annotations

import numpy as np

from networks.section_banks import SectionBanks

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
        distances = 1.0 - queries[start : start + BLOCK] @ bank.T
        if exclude is not None:
            rows = np.arange(len(distances))
            distances[rows, exclude[start : start + BLOCK]] = np.inf
        nearest = np.partition(distances, k - 1, axis=1)[:, :k]
        out[start : start + BLOCK] = nearest.mean(axis=1)
    return out


class SectionKnn(SectionBanks):
    """Per-section, per-domain cosine k-NN banks with leave-one-out standardisation (sklearn-style).

    `banks_` holds each bank's unit-length embeddings `[m, dim]`; `stats_` (mean, std, k used).
    """

    name = "k-NN"

    def __init__(self, k: int = 1) -> None:
        if k < 1:
            raise ValueError(f"beats.knn_k must be at least 1, got {k}")
        super().__init__()
        self.k = k

    def _k(self, size: int) -> int:
        # A bank of n clips has n - 1 leave-one-out neighbours; test clips use the same k so
        # their distances are comparable with the statistics.
        return max(1, min(self.k, size - 1))

    def _prepare(self, embeddings: np.ndarray) -> np.ndarray:
        return _normalise(embeddings)

    def _fit_bank(self, key: tuple[str, str, str], members: np.ndarray, everything: np.ndarray) -> np.ndarray:
        return members

    def _bank_stats(self, key: tuple[str, str, str], own: np.ndarray) -> tuple[float, float, int]:
        return (*super()._bank_stats(key, own), self._k(len(self.banks_[key])))

    def _distances(self, queries: np.ndarray, key: tuple[str, str, str], leave_out: bool) -> np.ndarray:
        bank = self.banks_[key]
        return knn_distance(queries, bank, self._k(len(bank)), np.arange(len(queries)) if leave_out else None)

    def state_dict(self) -> dict:
        return {
            "k": self.k,
            "banks": {"/".join(key): bank for key, bank in self.banks_.items()},
            "stats": {"/".join(key): list(value) for key, value in self.stats_.items()},
            "train_scores": self.train_scores_,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> SectionKnn:
        knn = cls(int(state["k"]))
        knn.banks_ = {tuple(key.split("/")): np.asarray(bank) for key, bank in state["banks"].items()}
        knn.stats_ = {tuple(key.split("/")): (float(v[0]), float(v[1]), int(v[2])) for key, v in state["stats"].items()}
        knn.train_scores_ = np.asarray(state["train_scores"])
        return knn
