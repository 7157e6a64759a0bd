"""Separate source and target models against one pooled model, on a small domain-shifted corpus
(`datasets.shift_corpus --preset small`: 4 machine types, 60 source and 4 target training clips):
the target domain's normal clips stop looking anomalous."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import load_config
from datasets.manifest import open_dataset
from datasets.shift_corpus import main as make_shift_corpus
from networks.classical.system import ClassicalSystem
from networks.system import Runtime
from reporting.metrics import hmean, section_metrics


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    out = tmp_path_factory.mktemp("shift")
    assert make_shift_corpus(["--out", str(out), "--preset", "small", "--seed", "0", "--workers", "2"]) == 0
    return out, tmp_path_factory.mktemp("cache")


def _auc_target_hmean(corpus, cache, domains: str) -> float:
    cfg = load_config(
        overrides={
            "data.cache_dir": str(cache),
            "data.workers": 2,
            "classical.domains": domains,
            "classical.features": "logmel_stats",
        }
    )
    dataset = open_dataset(corpus, 2024, "dev", [])
    runtime = Runtime(torch.device("cpu"), cfg.data, dataset.expected_channels)
    aucs = []
    for machine in dataset.machines:
        system = ClassicalSystem.from_config(cfg).fit(dataset.clips(machine, "train"), runtime, cache, ("gaussian",))
        test = dataset.clips(machine, "test")
        scores = system.score(test, "gaussian", runtime)
        metrics = section_metrics(
            machine,
            "00",
            np.array([c.label == "anomaly" for c in test]),
            np.array([c.domain == "target" for c in test]),
            scores,
            np.zeros(len(test), dtype=int),
        )
        aucs.append(metrics.auc["target"])
    return hmean(aucs)


def test_separate_domain_models_raise_the_target_auc(shifted):
    corpus, cache = shifted
    separate, pooled = _auc_target_hmean(corpus, cache, "separate"), _auc_target_hmean(corpus, cache, "pooled")
    # gaussian on logmel_stats, AUC (target) h-mean over the 4 machine types, corpus seeds 0, 1, 2:
    # separate 0.81, 0.70, 0.61 against pooled 0.40, 0.31, 0.42 (README, classical section)
    assert separate > 0.6
    assert separate > pooled + 0.15
