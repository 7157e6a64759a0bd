"""Waveform -> clip-level descriptors of time structure: band envelopes' modulation spectra and
band impulsiveness (kurtosis, crest factor). The classical system scores them beside its log-mel
statistics; the feature cache stores them per clip. Reads and writes nothing.

Both work on the same few bands, log-spaced from `LOWEST_HZ` to half the sample rate (`band_edges`):
a rotation rate, a stroke or a click pattern shows as a peak of a band envelope's modulation
spectrum; an impact or a crackle as a heavy-tailed (high kurtosis, high crest factor) band signal
where steady noise is Gaussian (kurtosis 3, crest factor ~12 dB over 10 s).
"""

from __future__ import annotations

import sys

import numpy as np
import scipy.signal
import scipy.stats

# Bump when an extractor changes, so cached features of the old one are never reused.
CLIP_FEATURES_VERSION = 1

LOWEST_HZ = 50.0  # below it, machine sounds hold little that a few bands would resolve
ENVELOPE_FFT = 512  # 32 ms at 16 kHz: fine enough in time for envelopes up to ~60 Hz
ENVELOPE_HOP = 128  # 8 ms: 125 envelope values per second at 16 kHz (modulations up to 62.5 Hz)
MODULATION_LOW_HZ = 0.5  # slowest modulation resolved (a 10 s clip resolves 0.1 Hz)
MODULATION_HIGH_HZ = 60.0
MODULATION_BINS = 12  # log-spaced modulation-frequency bins between the two
FILTER_ORDER = 4  # Butterworth band filters of the impulsiveness measures


def band_edges(bands: int, sample_rate: int) -> np.ndarray:
    """[bands + 1] band edges in Hz, log-spaced from `LOWEST_HZ` to half the sample rate."""
    return np.geomspace(LOWEST_HZ, sample_rate / 2, bands + 1)


def modulation_edges() -> np.ndarray:
    """[MODULATION_BINS + 1] modulation-frequency bin edges in Hz, log-spaced."""
    return np.geomspace(MODULATION_LOW_HZ, MODULATION_HIGH_HZ, MODULATION_BINS + 1)


def band_envelopes(wave: np.ndarray, sample_rate: int, bands: int) -> tuple[np.ndarray, float]:
    """Amplitude envelope of each band: the square root of the band's short-time power.

    Returns:
        [bands, frames] float64 (frames that lie wholly inside the clip; a clip shorter than one
        window is zero-padded to one), and the envelope's rate in frames per second.
    """
    x = np.asarray(wave, dtype=np.float64)
    if len(x) < ENVELOPE_FFT:
        x = np.pad(x, (0, ENVELOPE_FFT - len(x)))
    stft = scipy.signal.ShortTimeFFT(
        scipy.signal.windows.hann(ENVELOPE_FFT, sym=False), hop=ENVELOPE_HOP, fs=sample_rate
    )
    # Only frames wholly inside the clip: the zero-padded border frames would add a fade-in and
    # fade-out to every envelope, i.e. slow modulation that is not in the sound.
    first = stft.lower_border_end[1]
    last = max(stft.upper_border_begin(len(x))[1], first + 1)
    power = stft.spectrogram(x, p0=first, p1=last)  # [freqs, frames]
    edges = band_edges(bands, sample_rate)
    which = np.clip(np.searchsorted(edges, stft.f, side="right") - 1, 0, bands - 1)
    inside = stft.f >= edges[0]
    summed = np.zeros((bands, power.shape[1]))
    np.add.at(summed, which[inside], power[inside])
    return np.sqrt(summed), sample_rate / ENVELOPE_HOP


def modulation_spectrum(wave: np.ndarray, sample_rate: int, bands: int) -> np.ndarray:
    """How each band's envelope fluctuates: its power spectrum in log-spaced modulation bins.

    Each envelope's mean is removed and its power spectrum (Hann window) divided by the squared
    mean, so the value is a modulation depth, independent of the clip's level; each modulation
    bin averages the spectrum's values inside it (a clip too short to have one takes the
    nearest), in dB.

    Args:
        wave: [samples] float32.
        sample_rate: Hz.
        bands: frequency bands (`band_edges`).

    Returns:
        [bands * MODULATION_BINS] float32 in dB, band-major (band 0's bins first).
    """
    envelopes, rate = band_envelopes(wave, sample_rate, bands)
    frames = envelopes.shape[1]
    mean = envelopes.mean(axis=1, keepdims=True)
    window = scipy.signal.windows.hann(frames, sym=False) if frames > 1 else np.ones(1)
    spectrum = np.abs(np.fft.rfft((envelopes - mean) * window, axis=1)) ** 2
    depth = spectrum / np.maximum(mean**2 * np.sum(window**2), sys.float_info.epsilon)
    freqs = np.fft.rfftfreq(frames, 1.0 / rate)
    edges = modulation_edges()
    out = np.empty((bands, MODULATION_BINS))
    for b, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        inside = (freqs >= low) & (freqs < high)
        out[:, b] = (
            depth[:, inside].mean(axis=1) if inside.any() else depth[:, np.argmin(np.abs(freqs - np.sqrt(low * high)))]
        )
    return (10.0 * np.log10(np.maximum(out, sys.float_info.epsilon))).astype(np.float32).ravel()


def impulsiveness(wave: np.ndarray, sample_rate: int, bands: int) -> np.ndarray:
    """Kurtosis and crest factor of the whole clip and of each band-filtered signal.

    Kurtosis is Pearson's (3 for Gaussian noise), as log10; the crest factor is the peak over
    the RMS, in dB. Bands are Butterworth band-pass filters (the top one a high-pass).

    Args:
        wave: [samples] float32.
        sample_rate: Hz.
        bands: frequency bands (`band_edges`).

    Returns:
        [2 * (bands + 1)] float32: the log10 kurtoses (whole clip, then each band), then the crest
        factors in the same order.
    """
    x = np.asarray(wave, dtype=np.float64)
    edges = band_edges(bands, sample_rate)
    signals = [x]
    for low, high in zip(edges[:-1], edges[1:]):
        if high >= sample_rate / 2:
            sos = scipy.signal.butter(FILTER_ORDER, low, btype="highpass", output="sos", fs=sample_rate)
        else:
            sos = scipy.signal.butter(FILTER_ORDER, [low, high], btype="bandpass", output="sos", fs=sample_rate)
        signals.append(scipy.signal.sosfilt(sos, x))
    kurtoses, crests = [], []
    for s in signals:
        rms = np.sqrt(np.mean(s**2)) if len(s) else 0.0
        if rms <= 0.0:  # digital silence: no shape to measure; the values of Gaussian noise
            kurtoses.append(3.0)
            crests.append(1.0)
            continue
        kurtoses.append(float(scipy.stats.kurtosis(s, fisher=False)))
        crests.append(float(np.max(np.abs(s)) / rms))
    return np.concatenate(
        [np.log10(np.maximum(kurtoses, sys.float_info.epsilon)), 20.0 * np.log10(np.maximum(crests, 1.0))]
    ).astype(np.float32)
