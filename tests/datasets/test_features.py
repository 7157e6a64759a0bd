"""Log-mel features: parity with the official extractor (librosa), the cache key, the skip policy."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess

import librosa
import numpy as np
import pytest
import soundfile as sf

from core.config import fingerprint, load_config
from datasets.audio import AudioError, read_clip
from datasets.feature_cache import Spectrum, cached_features, cached_log_mels, feature_key, kind_key
from datasets.features import EXTRACTOR_VERSION, log_mel_spectrogram, log_spectrum
from datasets.manifest import machine_clips


@pytest.fixture
def cfg(tmp_path):
    return load_config(overrides={"data.cache_dir": str(tmp_path / "cache"), "data.workers": 1})


def test_log_mel_matches_librosa_on_a_real_clip(shared_dir, cfg):
    path = next((shared_dir / "data" / "dcase2023t2_dev_real_subset" / "gearbox" / "train").glob("*.wav"))
    wave = read_clip(path, 16000)
    ours = log_mel_spectrogram(wave, 16000, cfg.feature)
    mel = librosa.feature.melspectrogram(y=wave, sr=16000, n_fft=1024, hop_length=512, n_mels=128, power=2.0)
    reference = 10.0 * np.log10(np.maximum(mel, np.finfo(float).eps)).T
    assert ours.shape == reference.shape == (1 + 160000 // 512, 128)
    assert np.abs(ours - reference).max() < 0.01  # dB


def test_every_feature_parameter_changes_the_cache_key(cfg):
    base = feature_key(cfg.data, cfg.feature)
    changed = {
        "n_fft": 2048,
        "win_length": 512,
        "hop_length": 256,
        "n_mels": 64,
        "power": 1.0,
        "fmin": 50.0,
        "fmax": 7000.0,
    }
    for key, value in changed.items():
        assert feature_key(cfg.data, dataclasses.replace(cfg.feature, **{key: value})) != base, key
    assert feature_key(dataclasses.replace(cfg.data, channel=1), cfg.feature) != base
    assert feature_key(dataclasses.replace(cfg.data, sample_rate=32000), cfg.feature) != base
    assert feature_key(dataclasses.replace(cfg.data, workers=8), cfg.feature) == base
    # the key of caches written before other feature kinds existed: they stay valid
    assert base == fingerprint(
        {"feature": dataclasses.asdict(cfg.feature), "sample_rate": 16000, "channel": 0, "extractor": EXTRACTOR_VERSION}
    )


def test_log_spectrum_by_hand():
    rate, n = 16000, 16000
    t = np.arange(n) / rate
    tone = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)  # periodogram: n/4 at the 1 kHz bin
    spectrum = log_spectrum(tone, 8)  # 8 bands of 1 kHz; 1 kHz is the first bin of band 1 (1001 FFT bins)
    assert spectrum.shape == (8,) and spectrum.dtype == np.float32
    assert spectrum[1] == pytest.approx(10 * np.log10(n / 4 / 1000), abs=1e-3)
    assert spectrum.argmax() == 1 and spectrum[[0, 2, 3]].max() < spectrum[1] - 100
    # the level of a sound does not depend on the clip length; a clip shorter than the bands is padded
    assert log_spectrum(tone[:8000], 8)[1] == pytest.approx(spectrum[1], abs=0.1)
    assert np.isfinite(log_spectrum(tone[:5], 8)).all()


def test_a_second_feature_kind_has_its_own_key_and_cache(demo_corpus, cfg, tmp_path):
    clips = machine_clips(demo_corpus / "dev_data" / "raw", "SynthFan", "test")[:2]
    assert kind_key(cfg.data, Spectrum(512)) not in (
        kind_key(cfg.data, Spectrum(1024)),
        feature_key(cfg.data, cfg.feature),
    )
    kept, spectra = cached_features(clips, cfg.data, Spectrum(512), None, allow_skip=False)
    assert kept == clips and [s.shape for s in spectra] == [(512,), (512,)]
    assert np.array_equal(spectra[0], log_spectrum(read_clip(clips[0].path, 16000), 512))
    assert len(list((tmp_path / "cache" / kind_key(cfg.data, Spectrum(512))).rglob("spectrum.npy"))) == 2
    _, log_mels = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    assert log_mels[0].shape == (63, 128) and len(list((tmp_path / "cache").rglob("*.npy"))) == 4


def test_cache_is_reused_and_refreshed_when_the_wav_changes(demo_corpus, cfg, tmp_path):
    clips = machine_clips(demo_corpus / "dev_data" / "raw", "SynthFan", "test")[:3]
    _, first = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    cached = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(cached) == 3
    stamp = [p.stat().st_mtime_ns for p in cached]
    _, second = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    assert [p.stat().st_mtime_ns for p in cached] == stamp
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    os.utime(clips[0].path)  # a newer WAV invalidates its cached features
    cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    assert [p.stat().st_mtime_ns for p in cached] != stamp


def test_a_clip_replaced_by_an_older_file_gets_its_features(demo_corpus, cfg, tmp_path):
    """`cp -p`, `rsync -a` and unzip give a replaced clip the old file's modification time, older
    than the cache entry: the entry must still be recomputed, and replace the stale one."""
    folder = tmp_path / "raw" / "SynthFan" / "test"
    folder.mkdir(parents=True)
    for clip in machine_clips(demo_corpus / "dev_data" / "raw", "SynthFan", "test")[:2]:
        shutil.copy2(clip.path, folder / clip.name)
    clips = machine_clips(tmp_path / "raw", "SynthFan", "test")
    _, before = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    assert not np.array_equal(before[0], before[1])
    subprocess.run(["cp", "-p", str(clips[1].path), str(clips[0].path)], check=True)
    entries = sorted((tmp_path / "cache").rglob("*.npy"))
    assert all(p.stat().st_mtime_ns > clips[0].path.stat().st_mtime_ns for p in entries)  # looks fresh by mtime
    _, after = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    assert np.array_equal(after[0], before[1]) and np.array_equal(after[1], before[1])
    assert sorted((tmp_path / "cache").rglob("*.npy")) == entries  # one entry per clip, overwritten


def test_parallel_workers_give_the_same_features(demo_corpus, cfg, tmp_path):
    clips = machine_clips(demo_corpus / "dev_data" / "raw", "SynthPump", "train")[:6]
    _, serial = cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=False)
    parallel_data = dataclasses.replace(cfg.data, workers=2, cache_dir=str(tmp_path / "cache2"))
    _, parallel = cached_log_mels(clips, parallel_data, cfg.feature, None, allow_skip=False)
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel))


def _corrupt_copy(clips, tmp_path):
    folder = tmp_path / "raw" / "SynthFan" / "train"
    folder.mkdir(parents=True)
    for clip in clips:
        (folder / clip.name).write_bytes(clip.path.read_bytes())
    (folder / clips[1].name).write_bytes(b"RIFF broken")
    return machine_clips(tmp_path / "raw", "SynthFan", "train")


def test_broken_training_clip_stops_or_is_skipped_with_a_warning(demo_corpus, cfg, tmp_path, caplog):
    clips = _corrupt_copy(machine_clips(demo_corpus / "dev_data" / "raw", "SynthFan", "train")[:3], tmp_path)
    with pytest.raises(AudioError, match=f"{clips[1].name}: cannot be decoded.*data.on_bad_file: skip"):
        cached_log_mels(clips, cfg.data, cfg.feature, None, allow_skip=True)
    skip = dataclasses.replace(cfg.data, on_bad_file="skip")
    with caplog.at_level(logging.WARNING):
        kept, features = cached_log_mels(clips, skip, cfg.feature, None, allow_skip=True)
    assert [c.name for c in kept] == [clips[0].name, clips[2].name] and len(features) == 2
    assert clips[1].name in caplog.text
    with pytest.raises(AudioError, match=clips[1].name):  # test clips are never skipped
        cached_log_mels(clips, skip, cfg.feature, None, allow_skip=False)


def test_warnings_of_the_extraction_workers_reach_the_log(demo_corpus, cfg, tmp_path, caplog):
    """Decoding runs in worker processes; what they warn about must reach the run's log."""
    folder = tmp_path / "raw" / "SynthFan" / "train"
    folder.mkdir(parents=True)
    normal = machine_clips(demo_corpus / "dev_data" / "raw", "SynthFan", "train")[0]
    shutil.copy(normal.path, folder / normal.name)
    silent = folder / "section_00_source_train_normal_0999_spd_20_mic_1.wav"
    sf.write(silent, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    parallel = dataclasses.replace(cfg.data, workers=2)
    with caplog.at_level(logging.WARNING):
        kept, _ = cached_log_mels(
            machine_clips(tmp_path / "raw", "SynthFan", "train"), parallel, cfg.feature, None, allow_skip=False
        )
    assert len(kept) == 2
    assert caplog.messages == [f"{silent}: every sample is 0 (digital silence): check the recording"]
