"""Clips -> fixed-length waveform batches with sample padding masks, for the BEATs encoder.

Reads WAV files through `datasets.audio.read_clip`; writes nothing.

Every clip is brought to `num_samples`: a longer clip keeps its first `num_samples` samples, a
shorter one is zero-padded at the end and its padding is marked in a mask (True = padded), which
the encoder turns into a token mask so the padding takes no part in attention or pooling. A
summary of how many clips were cropped or padded is logged, so neither happens silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from core.config import DataConfig
from datasets.audio import AudioError, read_clip, usable_indices
from datasets.fbank import padding_mask_from_lengths
from datasets.manifest import Clip

log = logging.getLogger(__name__)


def fit_length(wave: np.ndarray, num_samples: int) -> tuple[np.ndarray, int]:
    """Crop or zero-pad one clip.

    Args:
        wave: [samples] float32.
        num_samples: the length wanted.

    Returns:
        [num_samples] float32 and the number of real (unpadded) samples.
    """
    if len(wave) >= num_samples:
        return np.ascontiguousarray(wave[:num_samples], dtype=np.float32), num_samples
    out = np.zeros(num_samples, dtype=np.float32)
    out[: len(wave)] = wave
    return out, len(wave)


def stack_waves(waves: list[np.ndarray], num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed-length batch of clips.

    Returns:
        wave [batch, num_samples] float32 and padding mask [batch, num_samples] bool (True = padded).
    """
    fitted = [fit_length(w, num_samples) for w in waves]
    batch = torch.from_numpy(np.stack([w for w, _ in fitted]))
    return batch, padding_mask_from_lengths(torch.tensor([n for _, n in fitted]), num_samples)


def load_waves(
    clips: list[Clip],
    data_cfg: DataConfig,
    expected_channels: int | None,
    allow_skip: bool,
) -> tuple[list[Clip], list[np.ndarray]]:
    """Decode clips (in `data.workers` threads; libsndfile releases the GIL).

    Args:
        allow_skip: whether `data.on_bad_file: skip` may drop a broken clip (training clips);
            a broken test clip always raises, because a submission needs a score for every clip.

    Returns:
        The clips kept and their [samples] float32 waveforms, in input order.

    Raises:
        AudioError: a clip cannot be used and may not be skipped; the message names the file.
    """

    def read(clip: Clip) -> np.ndarray | str:
        try:
            return read_clip(clip.path, data_cfg.sample_rate, data_cfg.channel, expected_channels)
        except AudioError as e:
            return str(e)

    with ThreadPoolExecutor(max(1, data_cfg.workers)) as pool:
        results = list(pool.map(read, clips))
    problems = {i: result for i, result in enumerate(results) if isinstance(result, str)}
    keep = usable_indices(len(clips), problems, data_cfg.on_bad_file, allow_skip)
    return [clips[i] for i in keep], [results[i] for i in keep]


def decoded_chunks(
    clips: list[Clip],
    data_cfg: DataConfig,
    expected_channels: int | None,
    num_samples: int,
    chunk_size: int,
    allow_skip: bool,
    what: str = "clips",
) -> Iterator[tuple[list[Clip], list[np.ndarray]]]:
    """Stream clips decoded `chunk_size` at a time (bounded memory), then log in one INFO line how
    many will be cropped or padded to `num_samples`.

    Yields:
        each chunk's kept clips and their [samples] float32 waveforms (chunks left empty by
        skipped clips are not yielded).
    """
    longer = shorter = 0
    for start in range(0, len(clips), chunk_size):
        kept, waves = load_waves(clips[start : start + chunk_size], data_cfg, expected_channels, allow_skip)
        if kept:
            longer += sum(len(w) > num_samples for w in waves)
            shorter += sum(len(w) < num_samples for w in waves)
            yield kept, waves
    if longer or shorter:
        seconds = num_samples / data_cfg.sample_rate
        log.info(
            "%s: %d clip(s) longer than %.2f s keep their first %.2f s; %d shorter clip(s) are zero-padded "
            "and the padding is masked (beats.clip_seconds)",
            what,
            longer,
            seconds,
            seconds,
            shorter,
        )


def clip_batches(
    clips: list[Clip],
    data_cfg: DataConfig,
    expected_channels: int | None,
    num_samples: int,
    batch_size: int,
    allow_skip: bool,
    what: str = "clips",
) -> Iterator[tuple[list[Clip], torch.Tensor, torch.Tensor]]:
    """`decoded_chunks` as fixed-length batches.

    Yields:
        the batch's kept clips, wave [batch, num_samples] and padding mask [batch, num_samples].
    """
    for kept, waves in decoded_chunks(clips, data_cfg, expected_channels, num_samples, batch_size, allow_skip, what):
        yield (kept, *stack_waves(waves, num_samples))
