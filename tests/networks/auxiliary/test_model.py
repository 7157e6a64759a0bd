"""The auxiliary network on real tensors: shapes for any clip length, size, seeding, input
standardisation, and the settings that are refused."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.config import ConfigError, load_config
from networks.auxiliary.model import AuxiliaryNet, check_branches
from networks.auxiliary.training import build_network

DEFAULT = load_config().auxiliary


@pytest.mark.parametrize("branches", [["logmel", "spectrum"], ["logmel"], ["spectrum"]])
@pytest.mark.parametrize("pooling", ["mean", "attentive"])
def test_embeddings_and_logits_of_any_clip_length(branches, pooling):
    cfg = dataclasses.replace(
        DEFAULT, branches=branches, pooling=pooling, channels=[8, 16, 32], blocks=1, embedding_dim=24, spectrum_bins=256
    )
    network = build_network(cfg, n_mels=64, bins=256, n_classes=5, seed=0).eval()
    assert network.embedding_dim == 24 * len(branches)
    for frames in (1, 7, 313):
        inputs = {"logmel": torch.randn(3, frames, 64), "spectrum": torch.randn(3, 256)}
        embedding = network.embed(inputs)
        assert embedding.shape == (3, 24 * len(branches))
        losses, logits, same = network(network.normalise(inputs), torch.tensor([0, 4, 2]))
        assert losses.shape == (3,) and logits.shape == (3, 5) and torch.allclose(same, embedding, atol=1e-5)


def test_the_default_network_is_compact_and_its_seed_decides_its_weights():
    network = build_network(DEFAULT, n_mels=128, bins=DEFAULT.spectrum_bins, n_classes=40, seed=1)
    parameters = sum(p.numel() for p in network.parameters())
    assert 300_000 < parameters < 3_000_000, parameters
    assert network.embedding_dim == 256
    twin, other = (build_network(DEFAULT, 128, DEFAULT.spectrum_bins, 40, seed) for seed in (1, 2))
    weights = network.state_dict()
    assert all(torch.equal(v, twin.state_dict()[k]) for k, v in weights.items())
    assert not torch.equal(weights["head.centres"], other.state_dict()["head.centres"])


def test_fixed_input_statistics_standardise_each_band():
    cfg = dataclasses.replace(DEFAULT, channels=[4], blocks=1, embedding_dim=8, spectrum_bins=16)
    network = build_network(cfg, n_mels=4, bins=16, n_classes=2, seed=0)
    network.set_input_statistics("logmel", torch.tensor([0.0, 10, 20, 30]), torch.tensor([1.0, 2, 4, 0]))
    out = network.normalise({"logmel": torch.tensor([[[1.0, 12, 16, 30]]]), "spectrum": torch.zeros(1, 16)})
    assert out["logmel"][0, 0].tolist() == [1.0, 1.0, -1.0, 0.0]  # a constant band's std is floored, not 0
    assert torch.equal(out["spectrum"], torch.zeros(1, 16))  # identity until set


def test_invalid_settings_are_refused_when_loaded_or_built():
    for key, value, message in (
        ("branches", "logmel,waveform", "must be one of logmel, spectrum; got 'waveform'"),
        ("pooling", "max", "must be one of mean, attentive; got 'max'"),
        ("ensemble", 0, "must be >= 1, got 0"),
        ("batch_size", 1, "must be >= 2, got 1"),
        ("mask_fraction", 1.0, "must be < 1, got 1.0"),
    ):
        with pytest.raises(ConfigError, match=f"config key 'auxiliary.{key}' {message}"):
            load_config(overrides={f"auxiliary.{key}": value})
    with pytest.raises(ValueError, match="at most once"):
        check_branches(["logmel", "logmel"])
    with pytest.raises(ValueError, match="at least one"):
        check_branches([])
    with pytest.raises(ValueError, match="at least one stage"):
        AuxiliaryNet(["logmel"], 64, 16, [], 1, "mean", 8, 8, None)
