"""The auxiliary network and its training helpers on real tensors: shapes, sizes, standardisation,
crops, SpecAugment masks, mixup, and the settings that are refused."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from datasets.frames import FrameBank
from networks.auxiliary.model import AuxiliaryNet, check_branches
from networks.auxiliary.system import check_config
from networks.auxiliary.training import ClipInputs, build_network, crop_frames, mask_spans, mixup, set_input_statistics
from tools.config import ConfigError, load_config
from tools.runtime import autocast

DEFAULT = load_config().auxiliary


@pytest.mark.parametrize("branches", [["logmel", "spectrum"], ["logmel"], ["spectrum"]])
@pytest.mark.parametrize("pooling", ["mean", "attentive"])
def test_embeddings_and_logits_of_any_clip_length(branches, pooling):
    cfg = dataclasses.replace(DEFAULT, branches=branches, pooling=pooling, channels=[8, 16, 32], blocks=1,
                              embedding_dim=24, spectrum_bins=256)
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


def test_inputs_are_standardised_per_band_by_the_training_statistics():
    rng = np.random.default_rng(0)
    log_mels = [rng.normal(-40, 5, (20, 4)).astype(np.float32) + [0, 10, 20, 30] for _ in range(3)]
    spectra = torch.from_numpy(rng.normal(-60, 3, (3, 16)).astype(np.float32))
    inputs = ClipInputs(FrameBank([x.copy() for x in log_mels], 1), spectra)
    cfg = dataclasses.replace(DEFAULT, channels=[4], blocks=1, embedding_dim=8, spectrum_bins=16)
    network = build_network(cfg, n_mels=4, bins=16, n_classes=2, seed=0)
    set_input_statistics(network, inputs)
    normalised = network.normalise(inputs.batch(np.arange(3), np.zeros(3, dtype=np.int64), 20))
    frames = normalised["logmel"].reshape(-1, 4)
    assert torch.allclose(frames.mean(0), torch.zeros(4), atol=1e-5) and torch.allclose(frames.std(0), torch.ones(4), atol=1e-4)
    assert torch.allclose(normalised["spectrum"].mean(0), torch.zeros(16), atol=1e-5)


def test_clip_inputs_gather_crops_of_each_clip():
    log_mels = [np.arange(10 * 2, dtype=np.float32).reshape(10, 2) + 100 * i for i in range(3)]
    inputs = ClipInputs(FrameBank(log_mels, 1), None)
    assert inputs.frames().tolist() == [10, 10, 10] and len(inputs) == 3
    batch = inputs.batch(np.array([2, 0]), np.array([3, 0]), 4)["logmel"]
    assert batch.shape == (2, 4, 2)
    assert batch[0, :, 0].tolist() == [206, 208, 210, 212] and batch[1, 0].tolist() == [0, 1]
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=0), np.array([313, 200])) == 200
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=64), np.array([313, 200])) == 64
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=500), np.array([313])) == 313


def test_spec_augment_masks_one_time_and_one_mel_span_per_clip():
    x = torch.ones(64, 50, 40)
    masked = mask_spans(x, 0.2, np.random.default_rng(0))
    zero_frames = (masked == 0).all(dim=2).sum(dim=1)  # whole frames masked, per clip
    zero_mels = (masked == 0).all(dim=1).sum(dim=1)
    assert zero_frames.max() <= 10 and zero_mels.max() <= 8 and zero_frames.max() > 0 and zero_mels.max() > 0
    assert ((masked == 0) | (masked == 1)).all() and torch.equal(mask_spans(x, 0.2, np.random.default_rng(0)), masked)


def test_mixup_mixes_inputs_and_class_weights_alike():
    x = torch.arange(4.0)
    inputs = {"logmel": x.view(4, 1, 1).expand(4, 3, 2), "spectrum": x.view(4, 1)}
    targets = torch.tensor([0, 1, 2, 2])
    mixed, weights = mixup(inputs, targets, 3, 0.4, np.random.default_rng(1))
    rng = np.random.default_rng(1)  # the draws mixup makes: a weight per clip, then its partner
    w, partner = torch.tensor(rng.beta(0.4, 0.4, size=4), dtype=torch.float32), torch.tensor(rng.permutation(4))
    expected = w * x + (1 - w) * x[partner]
    assert torch.allclose(mixed["spectrum"][:, 0], expected) and torch.allclose(mixed["logmel"][:, 2, 1], expected)
    one_hot = torch.eye(3)[targets]
    assert torch.allclose(weights, w[:, None] * one_hot + (1 - w[:, None]) * one_hot[partner])
    assert torch.allclose(weights.sum(1), torch.ones(4)) and not torch.equal(partner, torch.arange(4))


def test_invalid_settings_are_refused_with_the_key_and_the_choices():
    check_config(DEFAULT)
    cases = {"branches": (["logmel", "waveform"], "unknown auxiliary.branches \\['waveform'\\]; valid: logmel, spectrum"),
             "pooling": ("max", "unknown auxiliary.pooling 'max'; valid: attentive, mean"),
             "head": ("softmax", "unknown auxiliary.head 'softmax'; valid: adacos, arcface, subcluster_adacos"),
             "ensemble": (0, "auxiliary.ensemble must be at least 1, got 0"),
             "batch_size": (1, "auxiliary.batch_size must be at least 2"),
             "channels": ([], "auxiliary.channels must list positive widths"),
             "mask_fraction": (1.0, "mask_fraction in \\[0, 1\\)"),
             "mahala_ridge": (0.0, "auxiliary.mahala_ridge and auxiliary.lr must be positive")}
    for key, (value, message) in cases.items():
        with pytest.raises(ConfigError, match=message):
            check_config(dataclasses.replace(DEFAULT, **{key: value}))
    with pytest.raises(ValueError, match="at most once"):
        check_branches(["logmel", "logmel"])
    with pytest.raises(ValueError, match="at least one stage"):
        AuxiliaryNet(["logmel"], 64, 16, [], 1, "mean", 8, 8, None)


def test_bf16_autocast_embeds_like_float32():
    """The GPU path runs under bf16 autocast; the CPU's bf16 kernels show that every layer takes it
    and that the embeddings keep their direction (bf16 keeps about three significant digits)."""
    cfg = dataclasses.replace(DEFAULT, channels=[8, 16, 32], blocks=1, embedding_dim=32, spectrum_bins=256)
    network = build_network(cfg, n_mels=64, bins=256, n_classes=4, seed=0).eval()
    inputs = {"logmel": torch.randn(4, 40, 64), "spectrum": torch.randn(4, 256)}
    with torch.no_grad():
        reference = network.embed(inputs)
        with autocast(torch.device("cpu"), torch.bfloat16):
            low = network.embed(inputs)
            _, logits = network.head(low)
    assert low.dtype == torch.bfloat16 and logits.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(low.float(), reference).min() > 0.98
