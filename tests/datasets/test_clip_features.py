"""Modulation spectra and impulsiveness: shapes, and the property each must have on signals whose
answer is known (an amplitude-modulated tone, clicks against steady noise)."""

from __future__ import annotations

import numpy as np
import pytest

from datasets.clip_features import (
    MODULATION_BINS,
    band_edges,
    impulsiveness,
    modulation_edges,
    modulation_spectrum,
)

SR = 16000
BANDS = 8


def _am_tone(rate_hz: float, carrier_hz: float = 1000.0, seconds: float = 10.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return ((1 + 0.8 * np.sin(2 * np.pi * rate_hz * t)) * np.sin(2 * np.pi * carrier_hz * t) * 0.3).astype(np.float32)


def _band_of(frequency: float) -> int:
    return int(np.searchsorted(band_edges(BANDS, SR), frequency) - 1)


def _bin_of(rate: float) -> int:
    return int(np.searchsorted(modulation_edges(), rate) - 1)


@pytest.mark.parametrize("rate", [0.8, 3.0, 8.0, 30.0])
def test_the_modulation_spectrum_of_an_am_tone_peaks_at_the_modulation_rate(rate):
    spectrum = modulation_spectrum(_am_tone(rate), SR, BANDS)
    assert spectrum.shape == (BANDS * MODULATION_BINS,) and spectrum.dtype == np.float32
    carrier_band = spectrum.reshape(BANDS, MODULATION_BINS)[_band_of(1000.0)]
    assert int(np.argmax(carrier_band)) == _bin_of(rate)
    # the peak stands far above the bins away from it (a steady tone has no modulation)
    others = np.delete(carrier_band, [_bin_of(rate) - 1, _bin_of(rate), _bin_of(rate) + 1])
    assert carrier_band[_bin_of(rate)] > others.max() + 20


def test_the_modulation_spectrum_does_not_depend_on_the_level():
    # noise gives every band a sound of its own (an empty band holds only rounding noise)
    sound = _am_tone(5.0) + np.random.default_rng(0).standard_normal(SR * 10).astype(np.float32) * 0.01
    np.testing.assert_allclose(
        modulation_spectrum(sound, SR, BANDS), modulation_spectrum(sound * 0.1, SR, BANDS), atol=0.01
    )


def test_clicks_are_more_impulsive_than_noise_in_every_band():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR * 10).astype(np.float32) * 0.1
    clicks = noise * 0.05
    clicks[:: SR // 4] += 1.0  # four clicks a second
    noisy, clicky = impulsiveness(noise, SR, BANDS), impulsiveness(clicks, SR, BANDS)
    assert noisy.shape == clicky.shape == (2 * (BANDS + 1),) and noisy.dtype == np.float32
    kurtosis, crest = slice(0, BANDS + 1), slice(BANDS + 1, None)
    # Gaussian noise: kurtosis 3 (log10 0.48) in every band, crest factor ~13 dB over 160000 samples
    np.testing.assert_allclose(noisy[kurtosis], np.log10(3.0), atol=0.03)
    assert (noisy[crest] > 10).all() and (noisy[crest] < 16).all()
    assert (clicky[kurtosis] > noisy[kurtosis] + 0.5).all()
    assert (clicky[crest] > noisy[crest] + 3).all()


def test_silence_and_clips_shorter_than_one_window_give_finite_values():
    for wave in (np.zeros(SR, np.float32), np.random.default_rng(1).standard_normal(300).astype(np.float32)):
        assert np.isfinite(modulation_spectrum(wave, SR, BANDS)).all()
        assert np.isfinite(impulsiveness(wave, SR, BANDS)).all()
