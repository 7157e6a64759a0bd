"""Stored model states: a missing file or another format version names the command that rebuilds it."""
from __future__ import annotations

import pytest
import torch

from networks.system import ModelFileError, RunContext, load_model_state, trained_feature_configs
from tools.atomic import torch_save
from tools.config import load_config


def test_model_state_round_trip_and_errors(tmp_path):
    ctx = RunContext(load_config(overrides={"run.mode": "eval", "run.system": "autoencoder"}), torch.device("cpu"), None)
    path = tmp_path / "autoencoder.pt"
    with pytest.raises(ModelFileError, match=r"no model file .*autoencoder.pt: run ./01_train.sh -e --system autoencoder --force"):
        load_model_state(path, 2, ctx)
    torch_save({"format": 1, "weights": torch.ones(2)}, path)
    with pytest.raises(ModelFileError, match=r"another version of this system \(format 1, expected 2\): retrain with ./01_train.sh -e"):
        load_model_state(path, 2, ctx)
    assert torch.equal(load_model_state(path, 1, ctx)["weights"], torch.ones(2))


def test_scoring_uses_the_feature_settings_a_model_was_trained_with(caplog):
    trained = load_config(overrides={"feature.n_mels": 64, "data.sample_rate": 32000, "data.cache_dir": "old"}).to_dict()
    ctx = RunContext(load_config(overrides={"data.cache_dir": "new", "data.workers": 7}), torch.device("cpu"), None)
    data, feature = trained_feature_configs(trained, ctx)
    assert feature.n_mels == 64 and data.sample_rate == 32000
    assert data.cache_dir == "new" and data.workers == 7  # where this run keeps its cache, how many workers
    assert "trained with other feature settings" in caplog.text
    caplog.clear()
    trained_feature_configs(ctx.cfg.to_dict(), ctx)
    assert "other feature settings" not in caplog.text
