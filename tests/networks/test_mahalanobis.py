"""Selective Mahalanobis scorer: streaming moments, closed-form distances, the official reduction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from networks.mahalanobis import ResidualMoments, SelectiveMahalanobis


def _with_exact_covariance(n: int, cov: np.ndarray, mean: np.ndarray, seed: int) -> np.ndarray:
    """[n, dim] samples whose sample mean and (n - 1)-covariance are exactly `mean` and `cov`."""
    z = np.random.default_rng(seed).standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance = I
    return z @ np.linalg.cholesky(cov).T + mean


def _moments(x: np.ndarray, batches: list[int]) -> ResidualMoments:
    m = ResidualMoments(x.shape[1])
    for part in np.split(x, np.cumsum(batches)[:-1]):
        m.update(torch.from_numpy(part))
    return m


def test_streamed_moments_equal_numpy_in_uneven_batches_and_far_from_zero():
    x = np.random.default_rng(0).standard_normal((1000, 6)) * 0.01 + 1e4
    m = _moments(x, [1, 300, 2, 697])
    assert m.n_ == 1000
    np.testing.assert_allclose(m.mean_.numpy(), x.mean(0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.covariance().numpy(), np.cov(x, rowvar=False), rtol=1e-6, atol=1e-12)


def _fitted(ridge: float = 0.0) -> SelectiveMahalanobis:
    source = _with_exact_covariance(50, np.diag([4.0, 1.0]), np.array([0.5, -0.5]), seed=1)
    target = _with_exact_covariance(20, np.array([[2.0, 1.0], [1.0, 2.0]]), np.zeros(2), seed=2)
    return SelectiveMahalanobis(ridge).fit({"source": _moments(source, [50]), "target": _moments(target, [7, 13])})


def test_closed_form_distances_and_selection():
    scorer = _fitted()
    np.testing.assert_allclose(scorer.covariances_[0].numpy(), np.diag([4.0, 1.0]), atol=1e-10)
    x = torch.tensor([[1.0, -1.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    # source: x1^2/4 + x2^2; target: inverse [[2,-1],[-1,2]]/3 -> (2 x1^2 + 2 x2^2 - 2 x1 x2) / 3.
    # The norm is about zero, not about the residual mean, as in the official baseline.
    expected = np.array([[1.25, 2.0], [1.25, 2.0 / 3.0], [0.0, 0.0]])
    np.testing.assert_allclose(scorer.distances(x).numpy(), expected, atol=1e-10)
    np.testing.assert_allclose(scorer.score(x).numpy(), [1.25, 2.0 / 3.0, 0.0], atol=1e-10)


def test_ridge_loads_the_diagonal_relative_to_the_mean_variance():
    scorer = _fitted(ridge=0.5)
    loaded = np.diag([4.0, 1.0]) + 0.5 * 2.5 * np.eye(2)  # trace 5 / 2 dimensions = 2.5
    np.testing.assert_allclose(scorer.precisions_[0].numpy(), np.linalg.inv(loaded), atol=1e-10)


def test_clip_score_is_the_official_reduction_of_the_residual_matrix():
    """The official baseline scores a clip as the mean of all entries of D P D^T (D: the clip's
    [vectors, dim] residuals); that is the squared norm of the mean residual, mean(D)^T P mean(D)."""
    rng = np.random.default_rng(3)
    residuals = rng.standard_normal((31, 5))
    a = rng.standard_normal((5, 5))
    precision = a @ a.T + np.eye(5)
    official = (residuals @ precision @ residuals.T).mean()
    scorer = SelectiveMahalanobis()
    scorer.domains_, scorer.precisions_ = ("source", "target"), torch.from_numpy(np.stack([precision, precision]))
    ours = scorer.score(torch.from_numpy(residuals.mean(0, keepdims=True))).item()
    assert ours == pytest.approx(official, rel=1e-10)


def test_target_without_residuals_borrows_the_source_covariance(caplog):
    source = np.random.default_rng(4).standard_normal((40, 3))
    scorer = SelectiveMahalanobis().fit({"source": _moments(source, [40])})
    np.testing.assert_array_equal(scorer.covariances_[1].numpy(), scorer.covariances_[0].numpy())
    assert "no target-domain residuals" in caplog.text


def test_state_round_trip():
    scorer = _fitted(ridge=1e-3)
    again = SelectiveMahalanobis.from_state_dict(scorer.state_dict())
    x = torch.randn(4, 2, dtype=torch.float64)
    np.testing.assert_array_equal(again.score(x).numpy(), scorer.score(x).numpy())


def test_fewer_vectors_than_dimensions_still_give_non_negative_distances():
    """A target domain with few clips (the demo corpus: 236 residual vectors in 640 dimensions)
    has a singular covariance, summed in float32; the loaded inverse must stay positive definite."""
    rng = np.random.default_rng(5)
    source = torch.from_numpy(
        rng.standard_normal((400, 64)).astype(np.float32) * np.linspace(0.01, 10, 64).astype(np.float32)
    )
    target = torch.from_numpy(rng.standard_normal((20, 64)).astype(np.float32) * 3)
    moments = {"source": ResidualMoments(64).update(source), "target": ResidualMoments(64).update(target)}
    scorer = SelectiveMahalanobis(ridge=1e-6).fit(moments)
    assert torch.linalg.eigvalsh(scorer.precisions_).min() > 0
    x = torch.from_numpy(rng.standard_normal((200, 64)) * 5)
    assert scorer.distances(x).min() >= 0
