"""The auxiliary training helpers on real tensors: inputs held once, crops, input statistics,
SpecAugment masks and mixup."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from core.config import load_config
from networks.auxiliary.training import build_network, clip_inputs, crop_frames, mask_spans, mixup, set_input_statistics

DEFAULT = load_config().auxiliary


def test_clip_inputs_hold_each_clip_once_and_gather_crops():
    log_mels = [np.arange(10 * 2, dtype=np.float32).reshape(10, 2) + 100 * i for i in range(3)]
    spectra = [np.full(4, i, dtype=np.float32) for i in range(3)]
    inputs = clip_inputs(log_mels, spectra)
    assert log_mels == [] and spectra == []  # released as they are copied
    assert inputs.frames().tolist() == [10, 10, 10] and len(inputs) == 3
    batch = inputs.batch(np.array([2, 0]), np.array([3, 0]), 4)
    assert batch["logmel"].shape == (2, 4, 2) and batch["spectrum"][:, 0].tolist() == [2, 0]
    assert batch["logmel"][0, :, 0].tolist() == [206, 208, 210, 212] and batch["logmel"][1, 0].tolist() == [0, 1]
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=0), np.array([313, 200])) == 200
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=64), np.array([313, 200])) == 64
    assert crop_frames(dataclasses.replace(DEFAULT, train_frames=500), np.array([313])) == 313
    only_spectra = clip_inputs(None, [np.zeros(4, dtype=np.float32)] * 2)
    assert len(only_spectra) == 2 and only_spectra.frames().tolist() == [1, 1]


def test_inputs_are_standardised_per_band_by_the_training_statistics():
    rng = np.random.default_rng(0)
    log_mels = [rng.normal(-40, 5, (20 + i, 4)).astype(np.float32) + [0, 10, 20, 30] for i in range(3)]
    inputs = clip_inputs([x.copy() for x in log_mels], list(rng.normal(-60, 3, (3, 16)).astype(np.float32)))
    cfg = dataclasses.replace(DEFAULT, channels=[4], blocks=1, embedding_dim=8, spectrum_bins=16)
    network = build_network(cfg, n_mels=4, bins=16, n_classes=2, seed=0)
    set_input_statistics(network, inputs)
    frames = np.concatenate(log_mels)
    assert np.allclose(network.standardise["logmel"].mean.numpy(), frames.mean(0), atol=1e-4)
    assert np.allclose(network.standardise["logmel"].std.numpy(), frames.std(0), atol=1e-4)
    normalised = network.normalise({"spectrum": inputs.spectra, "logmel": torch.zeros(1, 1, 4)})["spectrum"]
    assert torch.allclose(normalised.mean(0), torch.zeros(16), atol=1e-5)


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
