"""Balance the classes of the BEATs training set: audiomentations growth, then SMOTE.

Reads the training waveforms and their class indices; writes nothing. Returns a `TrainingSet` of
normalised log-mel fbank `[clips, frames, 128]` (the input of `BEATs.encode_fbank`) with frame
padding masks `[clips, frames]` and labels `[clips]`.

Why SMOTE works on the fbank. DCASE classes are very imbalanced (990 source vs 10 target clips
per machine type), and the fine-tuned encoder must see new *inputs*, so the synthetic clips have
to live in a representation the encoder consumes. SMOTE interpolates between a clip and one of
its `k` nearest neighbours of the same class. On waveforms that would add two unrelated phases
(partial cancellation, not a plausible recording); on embeddings it would go stale after the
first update of the encoder. The normalised log-mel fbank - the encoder's own input, after the
fixed, untrained front end - is a spectrogram in which an interpolation is a plausible sound
between two clips of the same machine, section and attribute, and it is exactly what
`encode_fbank` takes. The frame padding mask of each clip is appended to its vector before SMOTE
and read back afterwards: a synthetic frame counts as padding when either parent's frame is
padding.

Classes with fewer than `k + 1` clips cannot be interpolated (SMOTE needs `k` neighbours), so
they are first grown with audiomentations (Gaussian noise at a random SNR, time stretch, pitch
shift, circular shift, with small ranges: a large pitch shift would imitate another speed
attribute, i.e. another class).
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from imblearn.over_sampling import SMOTE

from datasets.clip_batches import stack_waves
from datasets.fbank import fbank_features, reduce_padding_mask

log = logging.getLogger(__name__)

FBANK_CHUNK = 32  # clips per fbank call (bounds the float32 working memory)
SMOTE_BLOCK = 1024  # real clips per SMOTE call; imblearn copies its input, so memory stays bounded


def _gaussian_noise():
    from audiomentations import AddGaussianSNR

    # Relative to the clip's level: DCASE clips differ in loudness by tens of dB.
    return AddGaussianSNR(min_snr_db=20.0, max_snr_db=40.0, p=1.0)


def _time_stretch():
    from audiomentations import TimeStretch

    return TimeStretch(min_rate=0.95, max_rate=1.05, leave_length_unchanged=True, p=1.0)


def _pitch_shift():
    from audiomentations import PitchShift

    return PitchShift(min_semitones=-0.5, max_semitones=0.5, p=1.0)


def _shift():
    from audiomentations import Shift

    return Shift(min_shift=-0.5, max_shift=0.5, rollover=True, p=1.0)


AUGMENTATIONS: dict[str, Callable[[], object]] = {
    "gaussian_noise": _gaussian_noise,
    "time_stretch": _time_stretch,
    "pitch_shift": _pitch_shift,
    "shift": _shift,
}


def get_augmentation(names: list[str]):
    """An audiomentations `Compose` of the named transforms (names checked by the configuration's `Augmentation`)."""
    from audiomentations import Compose  # here: slow to import, and only training with small classes needs it

    return Compose([AUGMENTATIONS[n]() for n in names])


@contextlib.contextmanager
def seeded_global_rngs(seed: int) -> Iterator[None]:
    """Seed Python's and NumPy's global generators for a block, then restore their state.

    audiomentations draws from these globals and takes no generator, so this is the only way to
    make the grown clips a function of the seed alone (a resumed run must rebuild the same set).
    """
    py_state, np_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


@dataclass
class TrainingSet:
    """What the classifier trains on: real, augmented and SMOTE clips as encoder input."""

    fbank: torch.Tensor  # [clips, frames, 128] float16 normalised log-mel (half the memory; ample precision)
    frame_mask: torch.Tensor  # [clips, frames] bool, True = padded frame
    labels: torch.Tensor  # [clips] int64 class indices
    origin: np.ndarray  # [clips] "real" | "augmented" | "smote"

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.origin.tolist()))


def classes_to_grow(labels: Sequence[Hashable], smote_k: int) -> set:
    """Classes (indices or label strings) with fewer than `smote_k + 1` clips (none when balancing is off)."""
    if smote_k <= 0:
        return set()
    return {cls for cls, n in Counter(np.asarray(labels).tolist()).items() if n < smote_k + 1}


def grow_small_classes(
    small_waves: dict[int, list[np.ndarray]], min_count: int, augment: list[str], sample_rate: int, seed: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Augmented copies for every class with fewer than `min_count` clips, cycling through its clips.

    Args:
        small_waves: class -> all of its clips (in training-set order), for the classes to grow.

    Returns:
        The new waveforms only (not the originals) and their labels.
    """
    if not augment or not small_waves:
        return [], np.zeros(0, dtype=np.int64)
    transform = get_augmentation(augment)
    new_waves, new_labels = [], []
    with seeded_global_rngs(seed):
        for cls, members in sorted(small_waves.items()):
            for i in range(min_count - len(members)):
                source = members[i % len(members)]
                new_waves.append(np.asarray(transform(samples=source, sample_rate=sample_rate), dtype=np.float32))
                new_labels.append(cls)
    return new_waves, np.array(new_labels, dtype=np.int64)


def encoder_inputs(waves: list[np.ndarray], num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed-length clips -> normalised fbank [clips, frames, 128] float16 and frame mask [clips, frames]."""
    fbanks, masks = [], []
    for start in range(0, len(waves), FBANK_CHUNK):
        wave, sample_mask = stack_waves(waves[start : start + FBANK_CHUNK], num_samples)
        fbank = fbank_features(wave)
        fbanks.append(fbank.half())
        masks.append(reduce_padding_mask(sample_mask, fbank.shape[1]))
    return torch.cat(fbanks), torch.cat(masks)


def _blocks(counts: dict[int, int]) -> list[list[int]]:
    """Classes in groups of at least two (imblearn needs two) and about SMOTE_BLOCK clips."""
    blocks: list[list[int]] = [[]]
    total = 0
    for cls in sorted(counts):
        if len(blocks[-1]) >= 2 and total + counts[cls] > SMOTE_BLOCK:
            blocks.append([])
            total = 0
        blocks[-1].append(cls)
        total += counts[cls]
    if len(blocks) > 1 and len(blocks[-1]) < 2:
        blocks[-2] += blocks.pop()
    return blocks


def smote_oversample(
    fbank: torch.Tensor, frame_mask: torch.Tensor, labels: np.ndarray, k: int, per_class: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """SMOTE on the flattened fbank (+ frame mask) up to `per_class` clips per class.

    Args:
        fbank: [clips, frames, 128]; frame_mask: [clips, frames]; labels: [clips].
        k: SMOTE neighbours (reduced, with a warning, for a class that has too few clips).
        per_class: clips per class wanted; 0 = as many as the largest class. Larger classes are kept.

    Returns:
        Only the synthetic clips: fbank [new, frames, 128] float16, frame mask [new, frames], labels [new].
    """
    counts = dict(Counter(labels.tolist()))
    target = per_class if per_class > 0 else max(counts.values())
    frames = fbank.shape[1]
    too_few = sorted(c for c, n in counts.items() if n < 2 and n < target)
    if too_few:
        log.warning("SMOTE needs two clips of a class; class(es) %s have one and stay unbalanced", too_few)
    out_fbank, out_mask, out_labels = [], [], []
    wanted = {c: target for c, n in counts.items() if 2 <= n < target}
    for block in _blocks(counts):
        strategy = {c: wanted[c] for c in block if c in wanted}
        if not strategy or len(block) < 2:
            continue
        idx = np.flatnonzero(np.isin(labels, block))
        k_block = min(k, min(counts[c] for c in strategy) - 1)
        if k_block < k:
            log.warning(
                "SMOTE: a class of %s has only %d clips; using %d neighbours instead of %d",
                sorted(strategy),
                k_block + 1,
                k_block,
                k,
            )
        x = torch.cat([fbank[idx].float().flatten(1), frame_mask[idx].float()], dim=1).numpy()
        sampler = SMOTE(k_neighbors=k_block, sampling_strategy=strategy, random_state=seed + block[0])
        x_res, y_res = sampler.fit_resample(x, labels[idx])
        if len(x_res) != len(x) + sum(target - counts[c] for c in strategy):
            raise RuntimeError("imbalanced-learn returned an unexpected number of clips; its output layout changed")
        synthetic = torch.from_numpy(np.ascontiguousarray(x_res[len(x) :]))
        out_fbank.append(synthetic[:, : frames * 128].reshape(-1, frames, 128).half())
        out_mask.append(synthetic[:, frames * 128 :] > 1e-6)
        out_labels.append(y_res[len(x) :].astype(np.int64))
    if not out_labels:
        return fbank[:0], frame_mask[:0], labels[:0]
    return torch.cat(out_fbank), torch.cat(out_mask), np.concatenate(out_labels)


def balance_training_set(
    fbank: torch.Tensor,
    frame_mask: torch.Tensor,
    labels: np.ndarray,
    small_waves: dict[int, list[np.ndarray]],
    num_samples: int,
    smote_k: int,
    per_class: int,
    augment: list[str],
    sample_rate: int,
    seed: int,
) -> TrainingSet:
    """Real clips (already encoder input), augmented copies of small classes and SMOTE clips.

    Only the small classes' waveforms are needed, so a caller can turn the real clips into fbank
    chunk by chunk and never hold every waveform at once.

    Args:
        fbank: [clips, frames, 128] float16 and frame_mask: [clips, frames] of the real clips.
        labels: [clips] class indices.
        small_waves: class -> its waveforms, for every class in `classes_to_grow(labels, smote_k)`.
        num_samples: length every clip is cropped or padded to.
        smote_k: SMOTE neighbours; 0 turns balancing (and augmentation) off.
        per_class: clips per class after SMOTE; 0 = as many as the largest class.
        augment: audiomentations transform names for classes below `smote_k + 1` clips.
        seed: makes augmentation and SMOTE reproducible.
    """
    labels = np.asarray(labels, dtype=np.int64)
    origin = ["real"] * len(labels)
    if smote_k > 0:
        extra_waves, extra_labels = grow_small_classes(small_waves, smote_k + 1, augment, sample_rate, seed)
        if extra_waves:
            extra_fbank, extra_mask = encoder_inputs(extra_waves, num_samples)
            fbank, frame_mask = torch.cat([fbank, extra_fbank]), torch.cat([frame_mask, extra_mask])
        labels = np.concatenate([labels, extra_labels])
        origin += ["augmented"] * len(extra_waves)
        new_fbank, new_mask, new_labels = smote_oversample(fbank, frame_mask, labels, smote_k, per_class, seed)
        fbank, frame_mask = torch.cat([fbank, new_fbank]), torch.cat([frame_mask, new_mask])
        labels = np.concatenate([labels, new_labels])
        origin += ["smote"] * len(new_labels)
    result = TrainingSet(fbank, frame_mask, torch.from_numpy(labels), np.array(origin))
    counts = Counter(labels.tolist())
    log.info(
        "training set: %s clips (%s) in %d classes, %d-%d clips per class",
        len(result),
        ", ".join(f"{n} {kind}" for kind, n in result.counts().items()),
        len(counts),
        min(counts.values()),
        max(counts.values()),
    )
    return result
