"""The classical system in-process on the demo corpus: every scorer, save/load, and short clips."""

from __future__ import annotations

import logging

import numpy as np
import soundfile as sf
import torch

from core.config import load_config
from datasets.manifest import open_dataset
from networks.classical.system import SCORERS, ClassicalSystem
from networks.system import Runtime

MACHINE = "SynthGearbox"


def _fitted(corpus, tmp_path):
    cfg = load_config(overrides={"data.cache_dir": str(tmp_path / "cache"), "data.workers": 1})
    dataset = open_dataset(corpus, 2024, "dev", [MACHINE])
    runtime = Runtime(torch.device("cpu"), cfg.data, dataset.expected_channels)
    return ClassicalSystem.from_config(cfg).fit(dataset.clips(MACHINE, "train"), runtime, tmp_path), dataset, runtime


def test_every_scorer_is_fitted_and_save_load_round_trips(demo_corpus, tmp_path):
    system, dataset, runtime = _fitted(demo_corpus, tmp_path)
    assert set(system.train_scores_) == set(SCORERS) == set(ClassicalSystem.scorers)
    system.save(tmp_path)
    loaded = ClassicalSystem.load(tmp_path)
    assert loaded.get_params() == system.get_params()
    test = dataset.clips(MACHINE, "test")
    labels = np.array([c.label == "anomaly" for c in test])
    for scorer in SCORERS:
        scores = loaded.score(test, scorer, runtime)
        np.testing.assert_array_equal(scores, system.score(test, scorer, runtime))
        assert scores.shape == (len(test),) and np.isfinite(scores).all()
    gaussian = system.score(test, "gaussian", runtime)
    assert gaussian[labels].mean() > gaussian[~labels].mean()  # anomalies score higher on average
    # leave-one-out: a training clip's k-NN score is its distance to another clip, never zero
    assert (system.train_scores_["knn"] > 0).all()


def test_a_clip_shorter_than_one_analysis_window_is_scored_with_a_warning(demo_corpus, tmp_path, caplog):
    system, dataset, runtime = _fitted(demo_corpus, tmp_path)
    clip = dataset.clips(MACHINE, "test")[0]
    short = tmp_path / "short.wav"
    sf.write(short, np.random.default_rng(0).standard_normal(700).astype(np.float32) * 0.1, 16000)
    with caplog.at_level(logging.WARNING):
        scores = system.score([type(clip)(**{**clip.__dict__, "path": short})], "gaussian", runtime)
    assert np.isfinite(scores).all()
    assert f"{short}: 2 frames, shorter than one 1024-sample analysis window" in caplog.text
