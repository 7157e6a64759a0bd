"""The auxiliary system's scorers: softmax by hand (and its precision), per-section standardisation,
every scorer fitted on embeddings with leave-one-out training scores, and the state round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from networks.auxiliary.scoring import SCORERS, MemberScorers, softmax_scores
from networks.knn_scoring import SectionKnn
from networks.section_standardiser import SectionStandardiser

CLASS_SECTIONS = [("fan", "00"), ("fan", "00"), ("pump", "00")]


def test_softmax_score_is_one_minus_the_probability_of_the_own_section_summed_over_attributes():
    logits = np.array([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [40.0, 0.0, 0.0]])
    scores = softmax_scores(logits, CLASS_SECTIONS, ["fan", "pump", "fan"], ["00", "00", "00"])
    p = np.exp(logits[0]) / np.exp(logits[0]).sum()
    assert scores[:2] == pytest.approx([p[2], p[0] + p[1]])
    # a confident clip: 1 - p would round to 0; the probability of the other classes keeps the value
    assert scores[2] == pytest.approx(math.exp(-40) / (1 + 2 * math.exp(-40)), rel=1e-9) and scores[2] > 0
    assert softmax_scores(logits[:1], [("fan", "00")] * 3, ["fan"], ["00"]).tolist() == [
        0.0
    ]  # one section: no contrast
    with pytest.raises(
        KeyError,
        match=r"valve section 00 has no training clips \(trained sections: fan section 00, "
        r"pump section 00\)",
    ):
        softmax_scores(logits[:1], CLASS_SECTIONS, ["valve"], ["00"])


def test_section_standardiser_uses_each_sections_training_scores():
    scores = np.array([1.0, 3.0, 10.0, 20.0, 30.0, np.inf])
    machines, sections = ["fan"] * 2 + ["pump"] * 4, ["00"] * 6
    standardiser = SectionStandardiser().fit(scores, machines, sections)
    assert standardiser.stats_ == {
        ("fan", "00"): (2.0, 1.0),
        ("pump", "00"): (20.0, pytest.approx(np.std([10, 20, 30]))),
    }
    assert standardiser.transform(np.array([4.0, 20.0]), ["fan", "pump"], ["00", "00"]).tolist() == [2.0, 0.0]
    with pytest.raises(KeyError, match="valve section 01 has no training clips"):
        standardiser.transform(np.array([1.0]), ["valve"], ["01"])


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    n = 60
    machines = ["fan"] * 30 + ["pump"] * 30
    domains = (["source"] * 25 + ["target"] * 5) * 2
    embeddings = rng.standard_normal((n, 8)) + np.where(np.array(machines)[:, None] == "fan", 2.0, -2.0)
    classes = np.array([0 if m == "fan" else 2 for m in machines]) + (np.array(domains) == "target")
    class_sections = [("fan", "00"), ("fan", "00"), ("pump", "00"), ("pump", "00")]
    logits = 5 * np.eye(4)[classes] + rng.standard_normal((n, 4))
    args = (machines, ["00"] * n, domains)
    return (
        embeddings,
        logits,
        args,
        class_sections,
        MemberScorers(2, 0.05).fit(embeddings, logits, *args, class_sections),
    )


def test_every_scorer_is_fitted_and_its_training_scores_are_standardised_and_left_out(fitted):
    embeddings, logits, (machines, sections, domains), _, scorers = fitted
    for name in SCORERS:
        train = scorers.train_scores_[name]
        assert train.shape == (60,) and np.isfinite(train).all()
        for half in (slice(0, 30), slice(30, 60)):
            assert train[half].mean() == pytest.approx(0, abs=1e-9) and train[half].std() == pytest.approx(1, rel=1e-6)
    # the knn training scores are the k-NN scorer's leave-one-out ones, standardised per section
    loo = SectionKnn(2).fit(embeddings, machines, sections, domains).train_scores_
    assert np.allclose(scorers.train_scores_["knn"][:30], (loo[:30] - loo[:30].mean()) / loo[:30].std())
    # scored as new clips, the training clips see themselves in their banks: never higher than left out
    for name in ("knn", "mahala"):
        assert np.all(scorers.score(name, embeddings, logits, machines, sections) <= scorers.train_scores_[name] + 1e-9)
    softmax = scorers.score("softmax", embeddings, logits, machines, sections)
    assert np.allclose(softmax, scorers.train_scores_["softmax"])  # in-sample by definition: nothing to leave out


def test_scorers_round_trip_through_their_state_and_name_unknown_scorers(fitted):
    embeddings, logits, (machines, sections, _), class_sections, scorers = fitted
    copy = MemberScorers.from_state_dict(scorers.state_dict())
    rng = np.random.default_rng(1)
    queries, query_logits = rng.standard_normal((5, 8)), rng.standard_normal((5, 4))
    where = (["fan", "pump", "fan", "pump", "fan"], ["00"] * 5)
    for name in SCORERS:
        assert np.array_equal(
            copy.score(name, queries, query_logits, *where), scorers.score(name, queries, query_logits, *where)
        )
    assert copy.class_sections_ == class_sections
    with pytest.raises(KeyError, match="unknown scorer 'lof'; valid: knn, mahala, softmax"):
        scorers.score("lof", queries, query_logits, *where)
