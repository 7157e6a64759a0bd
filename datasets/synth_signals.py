"""Building blocks of synthetic machine sounds at 16 kHz: harmonic series, shaped noise, ringing
impacts, microphone responses and factory backgrounds.

Pure functions of a numpy random generator; reads and writes nothing. Every function returns float64
arrays of `n` samples. Harmonic series are drawn from a one-period wavetable indexed by a running
cycle count, so a time-varying speed and hundreds of harmonics cost one table look-up per sample;
noise is shaped in the frequency domain (one FFT each way), so any spectral envelope costs the same.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

SAMPLE_RATE = 16000
HIGHEST_PARTIAL_HZ = 7800.0  # partials stay below Nyquist (8 kHz) with a margin for speed wander
_TABLE = 4096  # wavetable length: one period; harmonics up to 2048


def seconds(n: int) -> np.ndarray:
    """[n] sample times in seconds."""
    return np.arange(n) / SAMPLE_RATE


def wander(rng: np.random.Generator, n: int, depth: float, rate_hz: float = 1.0) -> np.ndarray:
    """[n] smooth random curve with standard deviation `depth`, changing about `rate_hz` times a second
    (speed drift of a motor, level swells of a hall)."""
    knots = max(int(n / SAMPLE_RATE * rate_hz), 1) + 2
    return np.interp(np.arange(n), np.linspace(0, n, knots), depth * rng.standard_normal(knots))


def cycles(frequency: np.ndarray | float, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n] running count of cycles of a (time-varying) frequency in Hz, from a random start phase."""
    return rng.random() + np.cumsum(np.broadcast_to(frequency, (n,))) / SAMPLE_RATE


def partials_below(fundamental_hz: float, limit_hz: float = HIGHEST_PARTIAL_HZ) -> int:
    """How many harmonics of `fundamental_hz` lie below `limit_hz` (at least 1)."""
    return max(int(limit_hz / fundamental_hz), 1)


def harmonic_wave(cycle_count: np.ndarray, amplitudes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[n] periodic wave following `cycle_count`; harmonic k (1-based) has `amplitudes[k-1]` and a random
    phase. The caller keeps harmonics below Nyquist (`partials_below`)."""
    k = len(amplitudes)
    spectrum = np.zeros(_TABLE // 2 + 1, dtype=complex)
    spectrum[1 : k + 1] = np.asarray(amplitudes) * np.exp(2j * np.pi * rng.random(k)) * (_TABLE / 2)
    table = np.fft.irfft(spectrum, _TABLE)
    table = np.append(table, table[0])  # one wrap-around sample spares a modulo per look-up
    position = cycle_count * _TABLE
    whole = np.floor(position)
    i = whole.astype(np.int64) & (_TABLE - 1)
    low = table[i]
    return low + (position - whole) * (table[i + 1] - low)


def tone(frequency: np.ndarray | float, n: int, rng: np.random.Generator) -> np.ndarray:
    """[n] sine of a (time-varying) frequency, random phase."""
    return np.sin(2 * np.pi * cycles(frequency, n, rng))


def bump(f: np.ndarray, centre: float, octaves: float) -> np.ndarray:
    """Gaussian bump on a log-frequency axis: 1 at `centre`, 1/e^0.5 at `octaves` away."""
    return np.exp(-0.5 * (np.log2(np.maximum(f, 1.0) / centre) / octaves) ** 2)


def tilt(f: np.ndarray, db_per_octave: float, reference: float = 1000.0) -> np.ndarray:
    """Amplitude gain rising (or falling) `db_per_octave` around `reference` Hz (flat below 20 Hz)."""
    return 10 ** (db_per_octave * np.log2(np.maximum(f, 20.0) / reference) / 20)


def shaped_noise(rng: np.random.Generator, n: int, gain: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """[n] Gaussian noise with unit RMS whose amplitude spectrum follows `gain(frequency_hz)`."""
    spectrum = np.fft.rfft(rng.standard_normal(n)) * gain(np.fft.rfftfreq(n, 1 / SAMPLE_RATE))
    return unit_rms(np.fft.irfft(spectrum, n))


def unit_rms(x: np.ndarray) -> np.ndarray:
    """`x` scaled to an RMS of 1 (silence stays silence)."""
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def ringing(rng: np.random.Generator, freqs: list[float], decay_s: float, length_s: float = 0.05) -> np.ndarray:
    """Impulse response of a struck object: damped modes at `freqs` Hz with random gains, peak 1."""
    t = seconds(int(length_s * SAMPLE_RATE))
    x = sum(
        rng.uniform(0.5, 1.0)
        * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
        * np.exp(-t / (decay_s * rng.uniform(0.7, 1.3)))
        for f in freqs
        if f < SAMPLE_RATE / 2
    )
    return x / (np.max(np.abs(x)) + 1e-12)


def burst(rng: np.random.Generator, length_s: float, low_hz: float, high_hz: float) -> np.ndarray:
    """A band-limited noise burst with a Hann envelope, peak about 1 (rubbing, scratches, crackle)."""
    n = max(int(length_s * SAMPLE_RATE), 8)
    x = signal.sosfilt(_band_pass(low_hz, min(high_hz, 7900.0)), rng.standard_normal(n)) * np.hanning(n)
    return x / (np.max(np.abs(x)) + 1e-12)


@functools.lru_cache(maxsize=32)
def _band_pass(low_hz: float, high_hz: float) -> np.ndarray:
    # Designed once per band: bursts come by the thousand and the design costs more than the filtering.
    return signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE, output="sos")


def place(n: int, times_s: np.ndarray, amplitudes: np.ndarray | float, kernel: np.ndarray) -> np.ndarray:
    """[n] copies of `kernel` starting at `times_s`, scaled by `amplitudes` (events past the end are cut)."""
    train = np.zeros(n)
    index = np.asarray(np.round(np.asarray(times_s) * SAMPLE_RATE), dtype=np.int64)
    keep = (index >= 0) & (index < n)
    np.add.at(train, index[keep], np.broadcast_to(amplitudes, index.shape)[keep])
    return signal.oaconvolve(train, kernel)[:n]


def place_each(
    n: int, times_s: np.ndarray, amplitudes: np.ndarray, make_kernel: Callable[[], np.ndarray]
) -> np.ndarray:
    """Like `place`, with a fresh kernel from `make_kernel()` for every event (no two alike)."""
    x = np.zeros(n)
    for time, amplitude in zip(np.asarray(times_s), np.broadcast_to(amplitudes, np.shape(times_s))):
        kernel = make_kernel()
        start = int(round(time * SAMPLE_RATE))
        if 0 <= start < n:
            stop = min(start + len(kernel), n)
            x[start:stop] += amplitude * kernel[: stop - start]
    return x


def gate(n: int, intervals_s: list[tuple[float, float]], ramp_s: float = 0.004) -> np.ndarray:
    """[n] envelope, 1 inside the (start, stop) intervals in seconds and 0 outside, with short ramps."""
    g = np.zeros(n)
    for start, stop in intervals_s:
        g[max(int(start * SAMPLE_RATE), 0) : max(int(stop * SAMPLE_RATE), 0)] = 1.0
    return ndimage.uniform_filter1d(g, max(int(ramp_s * SAMPLE_RATE), 1), mode="constant")


def poisson_times(rng: np.random.Generator, rate_hz: float, n: int) -> np.ndarray:
    """Event times in seconds of a Poisson process of `rate_hz` over `n` samples."""
    duration = n / SAMPLE_RATE
    return np.sort(rng.uniform(0, duration, rng.poisson(rate_hz * duration)))


@dataclass(frozen=True)
class Microphone:
    """Where a microphone sits, as a transfer function: resonances or notches (centre Hz, width in
    octaves, gain dB), an overall spectral tilt, and the room's reverberation time."""

    peaks: tuple[tuple[float, float, float], ...] = ()
    tilt_db_per_octave: float = 0.0
    reverb_s: float = 0.0  # RT60; 0 = close microphone, no room

    def apply(self, rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
        """`x` as this microphone hears it; each clip's mounting varies by about 0.5 dB per peak."""
        n = len(x)

        def gain(f: np.ndarray) -> np.ndarray:
            db = sum((g + rng.normal(0, 0.5)) * bump(f, c * rng.uniform(0.97, 1.03), w) for c, w, g in self.peaks)
            return 10 ** (np.asarray(db) / 20) * tilt(f, self.tilt_db_per_octave + rng.normal(0, 0.2))

        y = np.fft.irfft(np.fft.rfft(x) * gain(np.fft.rfftfreq(n, 1 / SAMPLE_RATE)), n)
        if self.reverb_s > 0:
            t = seconds(int(self.reverb_s * SAMPLE_RATE))
            tail = rng.standard_normal(len(t)) * np.exp(-6.9 * t / self.reverb_s)
            response = np.concatenate([[1.0], 0.5 * tail / np.sqrt(np.sum(tail**2))])
            y = signal.oaconvolve(y, response)[:n]
        return y


BACKGROUNDS = ("hall", "workshop", "yard")


def factory_background(rng: np.random.Generator, kind: str, n: int) -> np.ndarray:
    """[n] factory background of one kind, different in every clip; unit RMS but for the yard.

    hall: broadband air-handling noise, mains hum and a distant machine, slowly swelling;
    workshop: brighter noise with metal clanks and bursts of compressed air;
    yard: low rumble, a passing engine, traffic and wind gusts, three times as loud as the others (used only
    where a machine's target domain moves it to another site).
    """
    if kind not in BACKGROUNDS:
        raise ValueError(f"unknown background {kind!r}; valid: {', '.join(BACKGROUNDS)}")
    t_gain = rng.uniform(-4, -2) if kind != "workshop" else rng.uniform(-2.5, -0.5)
    air = shaped_noise(rng, n, lambda f: tilt(f, t_gain) * (1 + 2 * bump(f, rng.uniform(60, 150), 0.8)))
    mains = rng.choice([50.0, 60.0])
    hum = harmonic_wave(cycles(mains, n, rng), rng.uniform(0, 1, 6) * 0.5 ** np.arange(6), rng)
    f0 = rng.uniform(25, 70) if kind != "yard" else rng.uniform(90, 140)
    distant = harmonic_wave(
        cycles(f0 * (1 + wander(rng, n, 0.01)), n, rng),
        rng.uniform(0.2, 1, 12) * bump(f0 * np.arange(1, 13), rng.uniform(150, 600), 1.0),
        rng,
    )
    x = air + rng.uniform(0.05, 0.4) * unit_rms(hum) + rng.uniform(0.1, 0.6) * unit_rms(distant)
    if kind == "workshop":
        clanks = poisson_times(rng, rng.uniform(0.3, 1.5), n)
        x += place_each(
            n,
            clanks,
            rng.uniform(1, 6, len(clanks)),
            lambda: ringing(rng, list(rng.uniform(400, 5000, 4)), rng.uniform(0.02, 0.12), 0.4),
        )
        for start in poisson_times(rng, 0.15, n):
            x += (
                rng.uniform(0.3, 1.0)
                * gate(n, [(start, start + rng.uniform(0.2, 1.0))], 0.05)
                * shaped_noise(rng, n, lambda f: bump(f, rng.uniform(2500, 5000), 0.7))
            )
    if kind == "yard":
        x += 2.0 * shaped_noise(rng, n, lambda f: bump(f, 40, 1.5)) * (1 + wander(rng, n, 0.5, 0.5)).clip(0.1)
        x += 0.5 * shaped_noise(rng, n, lambda f: bump(f, 3000, 0.8))  # traffic beyond the fence
    return unit_rms(x * (1 + wander(rng, n, 0.15, 0.3)).clip(0.2)) * (3.0 if kind == "yard" else 1.0)
