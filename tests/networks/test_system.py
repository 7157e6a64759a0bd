"""Stored model states: a missing file or another format version names the command that rebuilds it."""
from __future__ import annotations

import pytest
import torch

from networks.system import ModelFileError, RunContext, load_model_state
from core.atomic import torch_save
from core.config import load_config


def test_model_state_round_trip_and_errors(tmp_path):
    ctx = RunContext(load_config(overrides={"run.mode": "eval", "run.system": "autoencoder"}), torch.device("cpu"), None)
    path = tmp_path / "autoencoder.pt"
    with pytest.raises(ModelFileError, match=r"no model file .*autoencoder.pt: run ./01_train.sh -e --system autoencoder --force"):
        load_model_state(path, 2, ctx)
    torch_save({"format": 1, "weights": torch.ones(2)}, path)
    with pytest.raises(ModelFileError, match=r"another version of this system \(format 1, expected 2\): retrain with ./01_train.sh -e"):
        load_model_state(path, 2, ctx)
    assert torch.equal(load_model_state(path, 1, ctx)["weights"], torch.ones(2))
