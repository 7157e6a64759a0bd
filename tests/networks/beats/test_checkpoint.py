"""BEATs architecture against the official state_dict manifest, and checkpoint loading rules."""

import json
import logging
from pathlib import Path

import pytest
import torch

from networks.beats import (
    CHECKPOINT_CONFIG_KEY,
    BEATs,
    BEATsArchitecture,
    BEATsCheckpointError,
    get_preset,
    load_beats,
    save_beats,
)


@pytest.fixture(scope="module")
def manifest(beats_reference_dir: Path) -> dict:
    return json.loads((beats_reference_dir / "beats_iter3_plus_as2m_manifest.json").read_text())


def build_on_meta(cfg: BEATsArchitecture) -> BEATs:
    """Full-size model without allocating its 90 M parameters."""
    with torch.device("meta"):
        return BEATs(cfg)


def test_full_preset_is_the_manifest_cfg(manifest):
    cfg = get_preset("full")
    for key, value in manifest["cfg"].items():
        assert getattr(cfg, key) == value, key
    for key, value in manifest["effective_config_after_defaults"].items():
        assert getattr(cfg, key) == value, key


def test_full_model_state_dict_matches_manifest(manifest):
    model = build_on_meta(BEATsArchitecture.from_dict(manifest["cfg"]))
    state = model.state_dict(keep_vars=True)
    # Same keys in the same order as the official state_dict.
    assert list(state) == [entry["key"] for entry in manifest["state_dict"]]
    assert len(state) == manifest["num_state_dict_keys"]
    for entry in manifest["state_dict"]:
        tensor = state[entry["key"]]
        assert list(tensor.shape) == entry["shape"], entry["key"]
        assert str(tensor.dtype) == f"torch.{entry['dtype']}", entry["key"]
        if entry["aliases"] is not None:
            assert tensor is state[entry["aliases"]], f"{entry['key']} should be tied to {entry['aliases']}"
    assert sum(t.numel() for t in state.values()) == manifest["total_numel_over_state_dict_keys"]
    assert sum(p.numel() for p in model.parameters()) == manifest["total_unique_parameters"]
    assert list(model.buffers()) == manifest["buffers"]


def test_finetuned_full_model_adds_the_predictor(manifest):
    model = build_on_meta(get_preset("full").replace(finetuned_model=True, predictor_class=527))
    state = model.state_dict()
    pretrained_keys = {entry["key"] for entry in manifest["state_dict"]}
    extra = {key: value for key, value in state.items() if key not in pretrained_keys}
    expected = {entry["key"]: entry for entry in manifest["finetuned_model_extra_keys"]}
    assert set(extra) == set(expected)
    for key, tensor in extra.items():
        assert list(tensor.shape) == expected[key]["shape"]
        assert str(tensor.dtype) == f"torch.{expected[key]['dtype']}"


def test_tiny_preset_matches_the_tiny_checkpoint_cfg(beats_reference_dir):
    checkpoint = torch.load(beats_reference_dir / "tiny_beats_official_format.pt", weights_only=True)
    assert get_preset("tiny") == BEATsArchitecture.from_dict(checkpoint["cfg"])


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(ValueError, match="full, tiny"):
        get_preset("huge")


def test_unknown_cfg_keys_are_kept():
    cfg = BEATsArchitecture.from_dict({"encoder_layers": 2, "some_official_extra": "x"})
    assert cfg.encoder_layers == 2
    assert cfg.extras == {"some_official_extra": "x"}
    assert cfg.to_dict()["some_official_extra"] == "x"
    assert BEATsArchitecture.from_dict(cfg.to_dict()) == cfg


def test_wrong_architecture_is_rejected_with_the_keys(beats_reference_dir, tmp_path):
    checkpoint = torch.load(beats_reference_dir / "tiny_beats_official_format.pt", weights_only=True)
    state = dict(checkpoint["model"])
    del state["encoder.layers.1.fc2.bias"]
    state["encoder.layers.1.adapter.weight"] = torch.zeros(3)
    state["encoder.layers.0.fc1.weight"] = torch.zeros(96, 64)
    path = tmp_path / "broken.pt"
    torch.save({"cfg": checkpoint["cfg"], "model": state}, path)

    with pytest.raises(BEATsCheckpointError) as error:
        load_beats(path)
    message = str(error.value)
    assert "missing keys (1)" in message and "encoder.layers.1.fc2.bias" in message
    assert "unexpected keys (1)" in message and "encoder.layers.1.adapter.weight" in message
    assert (
        "shape mismatches (1)" in message
        and "encoder.layers.0.fc1.weight: checkpoint (96, 64) vs model (128, 64)" in message
    )


def test_cfg_that_does_not_fit_the_weights_is_rejected(beats_reference_dir, tmp_path):
    checkpoint = torch.load(beats_reference_dir / "tiny_beats_official_format.pt", weights_only=True)
    path = tmp_path / "three_layers.pt"
    torch.save({"cfg": {**checkpoint["cfg"], "encoder_layers": 3}, "model": checkpoint["model"]}, path)
    with pytest.raises(BEATsCheckpointError, match="encoder.layers.2.fc1.weight"):
        load_beats(path)


def test_not_a_checkpoint_dict_is_rejected(tmp_path):
    path = tmp_path / "weights_only.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(BEATsCheckpointError, match="expected a dict with 'cfg' and 'model'"):
        load_beats(path)


def test_missing_checkpoint_names_the_official_files(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_beats(tmp_path / "BEATs_iter3_plus_AS2M.pt")
    message = str(error.value)
    for name in ("BEATs_iter3.pt", "BEATs_iter3_plus_AS2M.pt", "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"):
        assert name in message
    assert "microsoft/unilm" in message and "beats/README.md" in message
    assert CHECKPOINT_CONFIG_KEY in message


@pytest.mark.parametrize("path", [None, "none", "None"])
def test_no_checkpoint_builds_random_weights_and_warns(path, caplog):
    with caplog.at_level(logging.WARNING, logger="networks.beats.checkpoint"):
        model = load_beats(path, preset="tiny")
    assert model.cfg == get_preset("tiny")
    assert not model.training
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "NO PRE-TRAINED WEIGHTS" in warnings[0].getMessage()


def test_saved_checkpoint_reloads_in_the_official_format(beats_reference_dir, tmp_path):
    original = load_beats(beats_reference_dir / "tiny_beats_finetuned_official_format.pt")
    with torch.no_grad():
        original.encoder.layers[1].fc1.bias.add_(1.0)  # stands in for fine-tuning
    path = tmp_path / "finetuned" / "beats.pt"
    save_beats(original, path)

    raw = torch.load(path, weights_only=True)
    official = torch.load(beats_reference_dir / "tiny_beats_finetuned_official_format.pt", weights_only=True)
    assert set(raw) == {"cfg", "model", "label_dict"}
    assert list(raw["model"]) == list(official["model"])
    assert raw["cfg"] == {**official["cfg"], **raw["cfg"]}  # official keys and values all present
    assert not list(tmp_path.glob("finetuned/*.tmp"))

    reloaded = load_beats(path)
    assert reloaded.label_dict == original.label_dict
    assert reloaded.cfg == original.cfg
    for (key, ours), theirs in zip(original.state_dict().items(), reloaded.state_dict().values()):
        assert torch.equal(ours, theirs), key
    tied = reloaded.state_dict(keep_vars=True)
    assert (
        tied["encoder.layers.1.self_attn.relative_attention_bias.weight"]
        is tied["encoder.layers.0.self_attn.relative_attention_bias.weight"]
    )


def test_untied_position_tables_are_rejected(beats_reference_dir, tmp_path):
    checkpoint = torch.load(beats_reference_dir / "tiny_beats_official_format.pt", weights_only=True)
    state = dict(checkpoint["model"])
    key = "encoder.layers.1.self_attn.relative_attention_bias.weight"
    state[key] = state[key].clone() + 1.0
    path = tmp_path / "untied.pt"
    torch.save({"cfg": checkpoint["cfg"], "model": state}, path)
    with pytest.raises(BEATsCheckpointError, match=key):
        load_beats(path)
