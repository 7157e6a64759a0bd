"""Per-section, per-domain Gaussians of embeddings: distances by hand, exact leave-one-out, fallbacks."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from networks.mahalanobis import SectionGaussians


def _distance(x: np.ndarray, members: np.ndarray, loading: float) -> np.ndarray:
    """Squared Mahalanobis distances of `x` under the Gaussian of `members`, refitted from scratch."""
    mean = members.mean(axis=0)
    covariance = np.cov(members, rowvar=False) + loading * np.eye(members.shape[1])
    d = x - mean
    return np.einsum("ni,ij,nj->n", d, np.linalg.inv(covariance), d)


@pytest.fixture
def banks():
    rng = np.random.default_rng(0)
    source = rng.standard_normal((40, 6)) * [3, 2, 1, 1, 0.5, 0.2]
    target = rng.standard_normal((5, 6)) + 4.0  # fewer clips than dimensions: the ridge makes it usable
    x = np.concatenate([source, target])
    domains = ["source"] * 40 + ["target"] * 5
    return x, domains, SectionGaussians(ridge=0.1).fit(x, ["fan"] * 45, ["00"] * 45, domains)


def test_distances_and_leave_one_out_match_a_refit(banks):
    x, _, scorer = banks
    for key, members in ((("fan", "00", "source"), x[:40]), (("fan", "00", "target"), x[40:])):
        loading = 0.1 * np.trace(np.cov(members, rowvar=False)) / 6
        assert scorer.banks_[key]["loading"] == pytest.approx(loading)
        query = np.array([[1.0, -2.0, 0.5, 0.0, 3.0, 1.0]])
        assert scorer._distances(query, key, leave_out=False) == pytest.approx(_distance(query, members, loading))
        # each member against a Gaussian refitted without it (same loading): the closed form is exact
        refit = [_distance(members[i : i + 1], np.delete(members, i, axis=0), loading)[0] for i in range(len(members))]
        assert scorer._distances(members, key, leave_out=True) == pytest.approx(refit, rel=1e-8)
        assert scorer.stats_[key] == pytest.approx((np.mean(refit), np.std(refit)))


def test_the_smaller_standardised_distance_wins_and_training_clips_are_left_out(banks):
    x, domains, scorer = banks
    query = np.array([[4.0] * 6, [0.0] * 6])
    per_bank = [
        (scorer._distances(query, key, False) - scorer.stats_[key][0]) / scorer.stats_[key][1]
        for key in (("fan", "00", "source"), ("fan", "00", "target"))
    ]
    assert scorer.score(query, ["fan"] * 2, ["00"] * 2) == pytest.approx(np.minimum(*per_bank))
    as_new = scorer.score(x, ["fan"] * 45, ["00"] * 45)
    assert np.isfinite(scorer.train_scores_).all() and np.all(as_new <= scorer.train_scores_ + 1e-9)
    assert np.sum(as_new < scorer.train_scores_ - 1e-6) >= 40
    with pytest.raises(KeyError, match="fan section 01 has no training clips"):
        scorer.score(query, ["fan"] * 2, ["01"] * 2)


def test_a_bank_without_spread_borrows_the_covariance_of_all_clips_and_state_round_trips(caplog):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((10, 3)), [[5.0, 5.0, 5.0]]])
    domains = ["source"] * 10 + ["target"]
    with caplog.at_level(logging.WARNING):
        scorer = SectionGaussians(ridge=0.01).fit(x, ["pump"] * 11, ["00"] * 11, domains)
    assert "Gaussian bank pump/00/target (1 clip(s)) has no spread of its own" in caplog.text
    assert "Gaussian bank pump/00/target has a single clip: its distances cannot be standardised" in caplog.text
    target = scorer.banks_[("pump", "00", "target")]
    assert not target["own"] and target["values"] == pytest.approx(np.linalg.eigvalsh(np.cov(x, rowvar=False)))
    assert scorer.stats_[("pump", "00", "target")] == (0.0, 1.0)
    copy = SectionGaussians.from_state_dict(scorer.state_dict())
    query = rng.standard_normal((4, 3))
    assert np.array_equal(copy.score(query, ["pump"] * 4, ["00"] * 4), scorer.score(query, ["pump"] * 4, ["00"] * 4))
    with pytest.raises(ValueError, match="positive ridge"):
        SectionGaussians(0.0)
