"""The classical system in-process on the demo corpus: every scorer, pooled and separate domains,
each feature group and their combinations, save/load, and short clips."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
import torch

from core.config import load_config
from datasets.manifest import open_dataset
from networks.classical.detectors import DETECTORS
from networks.classical.system import ClassicalSystem
from networks.system import Runtime

MACHINE = "SynthGearbox"


ALL_GROUPS = "logmel_stats,modulation,impulsiveness,long_term_spectrum"


def _fitted(corpus, tmp_path, **classical):
    overrides = {"data.cache_dir": str(tmp_path / "cache"), "data.workers": 1}
    cfg = load_config(overrides={**overrides, **{f"classical.{k}": v for k, v in classical.items()}})
    dataset = open_dataset(corpus, 2024, "dev", [MACHINE])
    runtime = Runtime(torch.device("cpu"), cfg.data, dataset.expected_channels)
    return ClassicalSystem.from_config(cfg).fit(dataset.clips(MACHINE, "train"), runtime, tmp_path), dataset, runtime


@pytest.mark.parametrize(
    "classical",
    [
        {"domains": "pooled", "features": "logmel_stats"},
        {"domains": "separate", "features": ALL_GROUPS, "combine": "mean", "target_prior": 20.0},
        {"domains": "separate", "features": "modulation,impulsiveness", "combine": "concat"},
    ],
)
def test_every_scorer_is_fitted_and_save_load_round_trips(demo_corpus, tmp_path, classical):
    system, dataset, runtime = _fitted(demo_corpus, tmp_path, **classical)
    assert set(system.train_scores_) == set(DETECTORS) == set(ClassicalSystem.scorers)
    groups = 1 if classical.get("combine") == "concat" else len(classical["features"].split(","))
    assert len(system.scalers_) == groups
    domains = {"source", "target"} if classical["domains"] == "separate" else {"pooled"}
    assert {key[2] for key in system.banks_["knn"].banks_} == domains
    system.save(tmp_path)
    loaded = ClassicalSystem.load(tmp_path)
    assert loaded.get_params() == system.get_params()
    test = dataset.clips(MACHINE, "test")
    labels = np.array([c.label == "anomaly" for c in test])
    for scorer in DETECTORS:
        scores = loaded.score(test, scorer, runtime)
        np.testing.assert_array_equal(scores, system.score(test, scorer, runtime))
        assert scores.shape == (len(test),) and np.isfinite(scores).all()
    gaussian = system.score(test, "gaussian", runtime)
    assert gaussian[labels].mean() > gaussian[~labels].mean()  # anomalies score higher on average
    if classical["domains"] == "pooled":  # one bank: training scores are its standardised held-out scores
        for scorer in DETECTORS:
            assert abs(system.train_scores_[scorer].mean()) < 1e-9
            assert abs(system.train_scores_[scorer].std() - 1) < 1e-9


def test_a_clip_shorter_than_one_analysis_window_is_scored_with_a_warning(demo_corpus, tmp_path, caplog):
    system, dataset, runtime = _fitted(demo_corpus, tmp_path)
    clip = dataset.clips(MACHINE, "test")[0]
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).standard_normal(700).astype(np.float32) * 0.1, 16000)
    with caplog.at_level(logging.WARNING):
        scores = system.score([type(clip)(**{**clip.__dict__, "path": short})], "gaussian", runtime)
    assert np.isfinite(scores).all()
    assert f"{short}: 2 frames, shorter than one 1024-sample analysis window" in caplog.text
