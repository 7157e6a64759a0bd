"""Stored model states and parameters: missing, damaged and foreign files are named; a model knows
the settings it was trained with and which of them may change at test time."""

from __future__ import annotations

import pytest
import torch

from core.atomic import torch_save
from core.config import load_config
from networks.autoencoder.system import AutoencoderSystem
from networks.classical.system import ClassicalSystem
from networks.system import ModelFileError, load_model_state


def test_model_state_round_trip_and_errors_name_the_file(tmp_path):
    path = tmp_path / "autoencoder.pt"
    with pytest.raises(ModelFileError, match=r"model file .*autoencoder.pt is missing"):
        load_model_state(path, 2)
    torch_save({"format": 1, "weights": torch.ones(2)}, path)
    with pytest.raises(
        ModelFileError, match=r"autoencoder.pt was written by another version of this system \(format 1, expected 2\)"
    ):
        load_model_state(path, 2)
    assert torch.equal(load_model_state(path, 1)["weights"], torch.ones(2))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ModelFileError, match=r"autoencoder.pt is damaged or incomplete"):
        load_model_state(path, 1)
    path.write_bytes(b"garbage" * 10)
    with pytest.raises(ModelFileError, match=r"autoencoder.pt is damaged or incomplete"):
        load_model_state(path, 1)
    torch.save([1, 2], path)
    with pytest.raises(ModelFileError, match=r"another version"):
        load_model_state(path, 1)


def test_parameters_are_config_sections_and_differences_are_named_except_test_time_keys():
    cfg = load_config()
    system = AutoencoderSystem.from_config(cfg)
    params = system.get_params()
    assert params["autoencoder"] == cfg.to_dict()["autoencoder"] and params["feature"] == cfg.to_dict()["feature"]
    assert params["data"] == {"sample_rate": 16000, "channel": 0} and params["run"] == {"seed": cfg.run.seed}
    assert AutoencoderSystem.from_params(params, type(cfg.autoencoder)).get_params() == params
    other = load_config(
        overrides={
            "feature.fmin": 2000.0,
            "autoencoder.threads": 2,
            "autoencoder.epochs": 3,
            "data.workers": 1,
            "decision.threshold_quantile": 0.5,
        }
    )
    assert system.settings_differences(other) == [
        "autoencoder.epochs (trained 100, now 3)",
        "feature.fmin (trained 0.0, now 2000.0)",
    ]
    assert system.with_test_time_settings(other).settings.threads == 2
    classical = ClassicalSystem.from_config(cfg)
    assert classical.settings_differences(
        load_config(overrides={"classical.n_neighbors": 5, "feature.n_mels": 64})
    ) == ["classical.n_neighbors (trained 1, now 5)", "feature.n_mels (trained 128, now 64)"]
