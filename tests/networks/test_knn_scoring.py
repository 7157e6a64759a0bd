"""Cosine k-NN to per-section source/target banks with leave-one-out standardisation: exact values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from networks.knn_scoring import SectionKnn, knn_distance


def _angle(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_knn_distance_by_hand_with_and_without_leave_one_out():
    bank = np.array([_angle(0), _angle(60), _angle(90)])
    queries = np.array([_angle(0), _angle(80)])
    assert knn_distance(queries, bank, 1).tolist() == pytest.approx([0.0, 1 - math.cos(math.radians(10))])
    assert knn_distance(queries, bank, 2).tolist() == pytest.approx(
        [(1 - math.cos(math.radians(60))) / 2, (2 - math.cos(math.radians(10)) - math.cos(math.radians(20))) / 2]
    )
    # leave-one-out: each bank member against the others, even if a duplicate exists
    duplicated = np.array([_angle(0), _angle(0), _angle(90)])
    assert knn_distance(duplicated, duplicated, 1, exclude=np.arange(3)).tolist() == pytest.approx([0.0, 0.0, 1.0])


def test_scores_are_standardised_per_bank_and_the_smaller_wins():
    source = [_angle(a) for a in (0, 10, 20, 30)]  # leave-one-out 1-NN distances: 10, 10, 10, 10 degrees
    target = [_angle(a) for a in (80, 100)]  # 20 degrees apart
    x = np.array(source + target) * 3.0  # norms do not matter
    knn = SectionKnn(k=1).fit(x, ["fan"] * 6, ["00"] * 6, ["source"] * 4 + ["target"] * 2)
    d10, d20 = 1 - math.cos(math.radians(10)), 1 - math.cos(math.radians(20))
    assert knn.stats_[("fan", "00", "source")] == pytest.approx((d10, 1e-6, 1))  # std floored
    assert knn.stats_[("fan", "00", "target")] == pytest.approx((d20, 1e-6, 1))
    # a test clip at 90 degrees: distance 10 degrees to the target bank, 60 to the source bank
    score = knn.score(np.array([_angle(90)]), ["fan"], ["00"])
    assert score[0] == pytest.approx((1 - math.cos(math.radians(10)) - d20) / 1e-6)
    assert knn.train_scores_[:4] == pytest.approx([0.0] * 4, abs=1e-6)


def test_training_scores_leave_the_clip_out():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8))
    domains = ["source"] * 25 + ["target"] * 5
    knn = SectionKnn(k=2).fit(x, ["pump"] * 30, ["00"] * 30, domains)
    assert np.all(np.isfinite(knn.train_scores_))
    # scoring a training clip as a new clip sees itself (distance 0), so it never scores higher
    as_new = knn.score(x, ["pump"] * 30, ["00"] * 30)
    assert np.all(as_new <= knn.train_scores_ + 1e-12) and np.sum(as_new < knn.train_scores_) >= 20
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    own = knn_distance(unit[:25], unit[:25], 2, exclude=np.arange(25))
    assert knn.stats_[("pump", "00", "source")] == pytest.approx((own.mean(), own.std(), 2))
    assert np.all(knn.train_scores_[:25] <= (own - own.mean()) / own.std() + 1e-12)


def test_sections_are_scored_against_their_own_banks_only():
    x = np.array([_angle(0), _angle(5), _angle(90), _angle(95)])
    knn = SectionKnn().fit(x, ["valve"] * 4, ["00", "00", "01", "01"], ["source"] * 4)
    near_00 = knn.score(np.array([_angle(2), _angle(2)]), ["valve", "valve"], ["00", "01"])
    assert near_00[0] < near_00[1]
    with pytest.raises(KeyError, match="valve section 02 has no training clips"):
        knn.score(np.array([_angle(0)]), ["valve"], ["02"])


def test_a_single_clip_bank_is_used_unstandardised_and_state_round_trips(caplog):
    x = np.array([_angle(0), _angle(10), _angle(50)])
    knn = SectionKnn(k=3).fit(x, ["fan"] * 3, ["00"] * 3, ["source", "source", "target"])
    assert "bank fan/00/target has a single clip" in caplog.text
    assert knn.stats_[("fan", "00", "target")] == (0.0, 1.0, 1)
    copy = SectionKnn.from_state_dict(knn.state_dict())
    query = np.array([_angle(30)])
    assert copy.score(query, ["fan"], ["00"]) == knn.score(query, ["fan"], ["00"])
    with pytest.raises(ValueError, match="knn_k must be at least 1"):
        SectionKnn(0)
