"""Waveform -> log-mel spectrogram (the official baseline's definition), or the clip's log spectrum.

`10 * log10(max(mel_power, eps))` of a Slaney-scale, Slaney-normalised mel spectrogram of a
centred, zero-padded STFT: numerically what `librosa.feature.melspectrogram` gives (the official
baseline's extractor), computed with torchaudio because it is hundreds of times faster on CPU.
The log spectrum is one FFT of the whole clip, its periodogram averaged into equal-width bands.
Reads and writes nothing.
"""

from __future__ import annotations

import functools
import sys

import numpy as np
import torch
import torchaudio

from core.config import FeatureConfig

# Bump when an extractor changes, so cached features of the old one are never reused.
EXTRACTOR_VERSION = 1
SPECTRUM_VERSION = 1


@functools.lru_cache(maxsize=4)
def _mel_transform(
    sample_rate: int,
    n_fft: int,
    win_length: int,
    hop_length: int,
    n_mels: int,
    power: float,
    fmin: float,
    fmax: float | None,
) -> torchaudio.transforms.MelSpectrogram:
    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate,
        n_fft=n_fft,
        win_length=win_length,
        hop_length=hop_length,
        f_min=fmin,
        f_max=fmax,
        n_mels=n_mels,
        power=power,
        center=True,
        pad_mode="constant",
        mel_scale="slaney",
        norm="slaney",
    )


def log_mel_spectrogram(wave: np.ndarray, sample_rate: int, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel spectrogram of one clip.

    Args:
        wave: [samples] float32.
        sample_rate: Hz.
        cfg: the `feature` section of the configuration.

    Returns:
        [frames, n_mels] float32 in dB, frames = 1 + samples // hop_length.
    """
    transform = _mel_transform(
        sample_rate, cfg.n_fft, cfg.win_length, cfg.hop_length, cfg.n_mels, cfg.power, cfg.fmin, cfg.fmax
    )
    with torch.inference_mode():
        mel = transform(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    # The official baseline's 20/power*log10 equals 10*log10 of the power spectrogram for power 2.
    log_mel = 20.0 / cfg.power * torch.log10(torch.clamp(mel, min=sys.float_info.epsilon))
    return log_mel.T.contiguous().numpy()


def log_spectrum(wave: np.ndarray, bins: int) -> np.ndarray:
    """Log power spectrum of a whole clip in `bins` equal-width bands from 0 Hz to half the sample rate.

    The periodogram `|FFT|^2 / samples` is averaged within each band, so a clip of another length
    gives the same level for the same sound, then `10 * log10(max(., eps))`. A clip too short to
    give one FFT bin per band is zero-padded.

    Args:
        wave: [samples] float32.
        bins: number of bands.

    Returns:
        [bins] float32 in dB.
    """
    n_fft = max(len(wave), 2 * bins - 1)
    power = np.abs(np.fft.rfft(np.asarray(wave, dtype=np.float64), n=n_fft)) ** 2 / max(len(wave), 1)
    edges = np.linspace(0, len(power), bins + 1).astype(np.int64)
    bands = np.add.reduceat(power, edges[:-1]) / np.diff(edges)
    return (10.0 * np.log10(np.maximum(bands, sys.float_info.epsilon))).astype(np.float32)
