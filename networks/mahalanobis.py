"""Selective Mahalanobis scoring of reconstruction residuals (the official baseline's MAHALA mode),
and of clip embeddings per section and domain (`SectionGaussians`).

After training, the residuals `x - reconstruction` of the training context vectors are summarised
per domain (source, target) by their covariance; a clip is then scored by the squared
Mahalanobis norm of its mean residual under each domain's covariance, and the smaller of the
two counts ("selective": a clip is judged by the domain it resembles). This is what the official
baseline computes: its per-clip score is the mean of all entries of `D P D^T` for the clip's
residual matrix D, which equals `mean(D)^T P mean(D)`.

Streaming: `ResidualMoments` accumulates means and covariances batch by batch, so no residual
array of a whole machine type is ever held.

`SectionGaussians` fits one Gaussian (mean, ridge-loaded covariance) to the embeddings of each
(machine, section, domain) bank and scores a clip by its squared Mahalanobis distance to each
bank of its section, standardised by the bank's leave-one-out distances; the smaller wins
(`networks.section_banks`). The leave-one-out distance of a member needs no refit: removing one
vector changes the mean and the scatter by a rank-one term, whose inverse Sherman-Morrison gives
in closed form. Reads and writes nothing.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from networks.section_banks import BankKey, SectionBanks

log = logging.getLogger(__name__)

DOMAINS = ("source", "target")


class ResidualMoments:
    """Running count, mean and scatter matrix of vectors, merged batch by batch in float64.

    Batches are combined with the pairwise update of Chan, Golub and LeVeque, which stays
    accurate when the mean is large compared with the spread.

    Attributes:
        n_: vectors seen.
        mean_: [dim] float64.
        scatter_: [dim, dim] float64, the sum of outer products of the centred vectors.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n_ = 0
        self.mean_ = torch.zeros(dim, dtype=torch.float64)
        self.scatter_ = torch.zeros((dim, dim), dtype=torch.float64)

    def update(self, x: torch.Tensor) -> ResidualMoments:
        """Add a batch of vectors, [n, dim] (any float dtype and device)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected [n, {self.dim}] vectors, got {tuple(x.shape)}")
        n_b = x.shape[0]
        if n_b == 0:
            return self
        mean_b = x.mean(0)
        centred = x - mean_b
        # The product runs in the batch's own precision (float32 keeps it fast); the sums are float64.
        if centred.device.type == "cpu":
            # NumPy sees the symmetric product and computes half of it (BLAS syrk).
            as_array = centred.detach().numpy()
            scatter_b = torch.from_numpy(as_array.T @ as_array).to(torch.float64)
        else:
            scatter_b = (centred.T @ centred).to("cpu", torch.float64)
        mean_b = mean_b.to("cpu", torch.float64)
        n = self.n_ + n_b
        delta = mean_b - self.mean_
        self.scatter_ += scatter_b + torch.outer(delta, delta) * (self.n_ * n_b / n)
        self.mean_ += delta * (n_b / n)
        self.n_ = n
        return self

    def covariance(self) -> torch.Tensor:
        """[dim, dim] float64 unbiased covariance (divided by n - 1)."""
        if self.n_ < 2:
            raise ValueError(f"a covariance needs at least two vectors, got {self.n_}")
        return self.scatter_ / (self.n_ - 1)


class SelectiveMahalanobis:
    """Scores residual vectors by their smallest squared Mahalanobis norm over the domains.

    Args:
        ridge: diagonal loading, relative to the mean variance: each domain's covariance C is
            replaced by C + ridge * trace(C) / dim * I before it is inverted, so a domain with
            fewer residual vectors than dimensions still has a usable inverse. 0 inverts C as is.

    Attributes (after `fit`):
        domains_: the domain names, in the order of the other attributes.
        covariances_: [domains, dim, dim] float64, as fitted (before the ridge).
        precisions_: [domains, dim, dim] float64, the inverses of the loaded covariances.
        counts_: [domains] vectors each covariance was fitted on.
    """

    def __init__(self, ridge: float = 0.0) -> None:
        self.ridge = ridge

    def fit(self, moments: dict[str, ResidualMoments]) -> SelectiveMahalanobis:
        """Fit one covariance per domain; a domain with fewer than two vectors (e.g. no target
        training clips) borrows the source covariance, as the official baseline does."""
        if "source" not in moments or moments["source"].n_ < 2:
            raise ValueError("the Mahalanobis scorer needs at least two source-domain residual vectors")
        covariances, counts = [], []
        for domain in DOMAINS:
            m = moments.get(domain)
            if m is None or m.n_ < 2:
                log.warning("no %s-domain residuals to fit a covariance to: using the source covariance", domain)
                m = moments["source"]
            covariances.append(m.covariance())
            counts.append(m.n_)
        self.domains_ = DOMAINS
        self.covariances_ = torch.stack(covariances)
        self.counts_ = torch.tensor(counts)
        self.precisions_ = torch.stack([self._invert(c) for c in covariances])
        return self

    def _invert(self, covariance: torch.Tensor) -> torch.Tensor:
        """Inverse of the loaded covariance. Its eigenvalues are floored at the loading, because a
        covariance of fewer vectors than dimensions, summed in float32, can have slightly negative
        ones, which would make some distances negative."""
        dim = covariance.shape[0]
        loading = self.ridge * torch.trace(covariance) / dim
        values, vectors = torch.linalg.eigh(covariance + torch.eye(dim, dtype=covariance.dtype) * loading)
        floor = loading if loading > 0 else values.abs().max() * dim * torch.finfo(values.dtype).eps
        return (vectors / values.clamp_min(floor)) @ vectors.T

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        """[n, dim] vectors -> [n, domains] squared Mahalanobis norms x^T P_d x."""
        x = x.to("cpu", torch.float64)
        return torch.einsum("ni,dij,nj->nd", x, self.precisions_, x)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """[n, dim] vectors -> [n] the smallest squared Mahalanobis norm over the domains."""
        return self.distances(x).min(dim=1).values

    def state_dict(self) -> dict:
        return {
            "ridge": self.ridge,
            "domains": list(self.domains_),
            "covariances": self.covariances_,
            "precisions": self.precisions_,
            "counts": self.counts_,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> SelectiveMahalanobis:
        scorer = cls(state["ridge"])
        scorer.domains_ = tuple(state["domains"])
        scorer.covariances_ = state["covariances"]
        scorer.precisions_ = state["precisions"]
        scorer.counts_ = state["counts"]
        return scorer


class SectionGaussians(SectionBanks):
    """Per-section, per-domain Gaussians of embeddings, scored by standardised squared Mahalanobis
    distance (sklearn-style `fit`/`score`; see `networks.section_banks`).

    Args:
        ridge: diagonal loading relative to the bank's mean variance (> 0): a target bank has
            fewer clips than dimensions, and its covariance is singular without it.

    `banks_` holds per bank: `mean` [dim], `values` [dim] and `vectors` [dim, dim] (eigenvalues
    and eigenvectors of the covariance, unloaded), `loading` (the ridge times the mean variance),
    `n` (clips) and `own` (False where the bank had fewer than two distinct clips and borrows the
    covariance of all training clips; its members then cannot be left out).
    """

    name = "Gaussian"

    def __init__(self, ridge: float) -> None:
        if not ridge > 0:
            raise ValueError(f"the Gaussian scorer needs a positive ridge, got {ridge}")
        super().__init__()
        self.ridge = ridge

    def _prepare(self, embeddings: np.ndarray) -> np.ndarray:
        return np.asarray(embeddings, dtype=np.float64)

    def _fit_bank(self, key: BankKey, members: np.ndarray, everything: np.ndarray) -> dict:
        moments = ResidualMoments(members.shape[1]).update(torch.from_numpy(members))
        own = moments.n_ >= 2 and float(torch.trace(moments.scatter_)) > 0
        if not own:
            log.warning(
                "Gaussian bank %s (%d clip(s)) has no spread of its own: it borrows the covariance of all "
                "%d training clips",
                "/".join(key),
                moments.n_,
                len(everything),
            )
        covariance = (
            moments.covariance()
            if own
            else ResidualMoments(everything.shape[1]).update(torch.from_numpy(everything)).covariance()
        )
        values, vectors = torch.linalg.eigh(covariance)
        dim = len(values)
        # C order (eigh returns columns-major vectors): a stored and reloaded bank then multiplies the
        # same memory layout, and gives bit-identical distances
        return {
            "mean": moments.mean_.numpy(),
            "values": values.clamp_min(0).numpy(),
            "vectors": np.ascontiguousarray(vectors.numpy()),
            # floored: identical training embeddings have no variance at all
            "loading": max(float(self.ridge * torch.trace(covariance) / dim), np.finfo(np.float64).tiny),
            "n": int(moments.n_),
            "own": bool(own),
        }

    def _distances(self, queries: np.ndarray, key: BankKey, leave_out: bool) -> np.ndarray:
        bank = self.banks_[key]
        projected = (queries - bank["mean"]) @ bank["vectors"]  # [n, dim] in the covariance's eigenbasis
        values, loading, n = bank["values"], bank["loading"], bank["n"]
        if not leave_out:
            return (projected**2 / (values + loading)).sum(axis=1)
        if not bank["own"] or n < 3:
            return np.full(len(queries), np.inf)
        # Member i left out: mean' = mean - r/(n-1), scatter' = scatter - n/(n-1) r r^T for its residual
        # r, so its covariance' + loading I = A - c r r^T with A = scatter/(n-2) + loading I (the
        # covariance's eigenbasis, eigenvalues scaled by (n-1)/(n-2)) and c = n/((n-1)(n-2)).
        # Sherman-Morrison: r^T (A - c r r^T)^-1 r = a / (1 - c a) with a = r^T A^-1 r, and the
        # member lies n/(n-1) r from the reduced mean.
        a = (projected**2 / (values * (n - 1) / (n - 2) + loading)).sum(axis=1)
        c = n / ((n - 1) * (n - 2))
        return (n / (n - 1)) ** 2 * a / np.maximum(1.0 - c * a, np.finfo(np.float64).tiny)

    def state_dict(self) -> dict:
        return {
            "ridge": self.ridge,
            "banks": {"/".join(key): bank for key, bank in self.banks_.items()},
            "stats": {"/".join(key): list(value) for key, value in self.stats_.items()},
            "train_scores": self.train_scores_,
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> SectionGaussians:
        scorer = cls(float(state["ridge"]))
        scorer.banks_ = {
            tuple(key.split("/")): {
                name: np.asarray(value) if name in ("mean", "values", "vectors") else value
                for name, value in bank.items()
            }
            for key, bank in state["banks"].items()
        }
        scorer.stats_ = {tuple(key.split("/")): (float(v[0]), float(v[1])) for key, v in state["stats"].items()}
        scorer.train_scores_ = np.asarray(state["train_scores"])
        return scorer
