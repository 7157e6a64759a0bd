"""Class balancing for the BEATs classifier: audiomentations growth, SMOTE on the fbank, masks."""

from __future__ import annotations

import typing
from collections import Counter

import numpy as np
import torch

from core.config import Augmentation
from datasets.fbank import fbank_features
from networks.beats.balancing import (
    AUGMENTATIONS,
    TrainingSet,
    balance_training_set,
    classes_to_grow,
    encoder_inputs,
    get_augmentation,
    grow_small_classes,
    smote_oversample,
)

RATE = 16000


def _tone(freq: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (
        0.1 * np.sin(2 * np.pi * freq * (1 + 0.01 * rng.standard_normal()) * t) + 0.01 * rng.standard_normal(len(t))
    ).astype(np.float32)


def _clips(counts: dict[int, int], seconds: float = 0.5) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(0)
    waves, labels = [], []
    for cls, n in counts.items():
        waves += [_tone(300.0 * (cls + 1), seconds, rng) for _ in range(n)]
        labels += [cls] * n
    return waves, np.array(labels)


def build_training_set(waves: list[np.ndarray], labels: np.ndarray, num_samples: int, **options) -> TrainingSet:
    """`balance_training_set` on clips held in memory, handing it the small classes' waveforms as the trainer does."""
    labels = np.asarray(labels, dtype=np.int64)
    fbank, frame_mask = encoder_inputs(waves, num_samples)
    small = {
        cls: [w for w, y in zip(waves, labels) if y == cls]
        for cls in sorted(classes_to_grow(labels, options["smote_k"]))
    }
    return balance_training_set(fbank, frame_mask, labels, small, num_samples, **options)


def test_small_classes_are_grown_then_every_class_is_balanced():
    waves, labels = _clips({0: 12, 1: 3, 2: 7})
    data = build_training_set(
        waves,
        labels,
        RATE // 2,
        smote_k=5,
        per_class=0,
        augment=["gaussian_noise", "time_stretch", "pitch_shift", "shift"],
        sample_rate=RATE,
        seed=1,
    )
    assert Counter(data.labels.tolist()) == {0: 12, 1: 12, 2: 12}
    assert data.counts() == {"real": 22, "augmented": 3, "smote": 11}
    frames = 1 + (RATE // 2 - 400) // 160
    assert data.fbank.shape == (36, frames, 128) and data.fbank.dtype == torch.float16
    assert data.frame_mask.shape == (36, frames) and not data.frame_mask.any()
    # the real clips come first, unchanged (up to float16 storage)
    expected = fbank_features(torch.from_numpy(np.stack(waves)))
    assert torch.allclose(data.fbank[:22].float(), expected, atol=2e-2)


def test_synthetic_clips_lie_between_clips_of_their_own_class():
    waves, labels = _clips({0: 8, 1: 8, 2: 2})
    data = build_training_set(
        waves, labels, RATE // 2, smote_k=2, per_class=8, augment=["gaussian_noise"], sample_rate=RATE, seed=3
    )
    real = data.fbank[: len(waves) + 1].float().flatten(1)  # + the one augmented clip of class 2
    real_labels = data.labels[: len(waves) + 1]
    for x, y in zip(data.fbank[data.origin == "smote"].float().flatten(1), data.labels[data.origin == "smote"]):
        nearest = torch.cdist(x[None], real)[0].argmin()
        assert real_labels[nearest] == y


def test_padding_survives_smote_as_the_union_of_the_parents_padding():
    rng = np.random.default_rng(2)
    waves = [_tone(500, 0.5, rng) for _ in range(6)] + [_tone(900, 0.3, rng) for _ in range(3)]
    labels = np.array([0] * 6 + [1] * 3)
    data = build_training_set(waves, labels, RATE // 2, smote_k=2, per_class=0, augment=[], sample_rate=RATE, seed=0)
    padded_frames = data.frame_mask.sum(dim=1)
    assert (padded_frames[:6] == 0).all() and (padded_frames[6:9] > 0).all()
    synthetic = data.origin == "smote"
    assert synthetic.sum() == 3 and (padded_frames[torch.from_numpy(synthetic)] == padded_frames[6]).all()


def test_balancing_is_reproducible_and_off_with_k_zero():
    waves, labels = _clips({0: 9, 1: 2})
    args = dict(num_samples=RATE // 2, smote_k=3, per_class=0, augment=["pitch_shift", "shift"], sample_rate=RATE)
    a = build_training_set(waves, labels, seed=5, **args)
    b = build_training_set(waves, labels, seed=5, **args)
    assert torch.equal(a.fbank, b.fbank) and torch.equal(a.labels, b.labels)
    off = build_training_set(
        waves, labels, RATE // 2, smote_k=0, per_class=0, augment=["shift"], sample_rate=RATE, seed=5
    )
    assert off.counts() == {"real": 11}


def test_growth_without_transforms_leaves_smote_fewer_neighbours(caplog):
    waves, labels = _clips({0: 6, 1: 3})
    grown, grown_labels = grow_small_classes({1: waves[6:]}, 6, [], RATE, seed=0)
    assert grown == [] and len(grown_labels) == 0
    data = build_training_set(waves, labels, RATE // 2, smote_k=5, per_class=0, augment=[], sample_rate=RATE, seed=0)
    assert Counter(data.labels.tolist()) == {0: 6, 1: 6}
    assert "using 2 neighbours instead of 5" in caplog.text


def test_every_augmentation_the_configuration_accepts_exists():
    assert list(AUGMENTATIONS) == list(typing.get_args(Augmentation))  # beats.augment is checked against the Literal
    assert len(get_augmentation(list(AUGMENTATIONS)).transforms) == 4


def test_smote_keeps_larger_classes_and_returns_only_new_clips():
    fbank = torch.randn(10, 4, 128).half()
    mask = torch.zeros(10, 4, dtype=torch.bool)
    labels = np.array([0] * 7 + [1] * 3)
    new_fbank, new_mask, new_labels = smote_oversample(fbank, mask, labels, k=2, per_class=5, seed=0)
    assert new_labels.tolist() == [1, 1] and new_fbank.shape == (2, 4, 128) and not new_mask.any()
