"""Decoding clips: the channel policy and every way a WAV can be wrong."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from datasets.audio import AudioError, read_clip


def test_real_clip_decodes(shared_dir):
    path = next((shared_dir / "data" / "dcase2023t2_dev_real_subset" / "fan" / "train").glob("*.wav"))
    wave = read_clip(path, 16000, expected_channels=1)
    assert wave.dtype == np.float32 and wave.shape == (160000,) and 0 < np.abs(wave).max() <= 1


def test_stereo_2026_clip_gives_the_chosen_channel(tmp_path):
    path = tmp_path / "section_00_source_train_normal_0000_.wav"
    left, right = np.full(1600, 0.25, np.float32), np.full(1600, -0.5, np.float32)
    sf.write(path, np.stack([left, right], axis=1), 16000)
    assert read_clip(path, 16000, channel=0, expected_channels=2)[0] == pytest.approx(0.25, abs=1e-4)
    assert read_clip(path, 16000, channel=1, expected_channels=2)[0] == pytest.approx(-0.5, abs=1e-4)
    with pytest.raises(AudioError, match="has 2 channel\\(s\\), this dataset's clips have 1"):
        read_clip(path, 16000, expected_channels=1)
    with pytest.raises(AudioError, match="data.channel=2 does not exist"):
        read_clip(path, 16000, channel=2)


def test_wrong_sample_rate_is_named(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, np.zeros(4410, np.float32), 44100)
    with pytest.raises(AudioError, match=r"clip.wav: sample rate is 44100 Hz, expected 16000 Hz"):
        read_clip(path, 16000)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00\x00\x00WAVEfmt garbage", b"not audio at all" * 100])
def test_undecodable_file_is_named(tmp_path, content):
    path = tmp_path / "section_00_source_test_normal_0001_.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError, match="section_00_source_test_normal_0001_.wav: cannot be decoded"):
        read_clip(path, 16000)


def test_truncated_wav_is_named(tmp_path, shared_dir):
    original = next((shared_dir / "data" / "dcase2023t2_dev_real_subset" / "valve" / "train").glob("*.wav"))
    path = tmp_path / original.name
    path.write_bytes(original.read_bytes()[:30])
    with pytest.raises(AudioError, match=original.name):
        read_clip(path, 16000)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples_are_named(tmp_path, bad):
    path = tmp_path / "section_00_0003.wav"
    wave = np.full(1600, 0.1, np.float32)
    wave[[10, 700]] = bad
    sf.write(path, wave, 16000, subtype="FLOAT")  # float WAVs can hold NaN and Inf; PCM cannot
    with pytest.raises(AudioError, match=r"section_00_0003.wav: 2 of its 1600 samples are not finite \(NaN or Inf\)"):
        read_clip(path, 16000)


def _noise(seconds: float = 1.0) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(16000 * seconds))).astype(np.float32)


@pytest.mark.parametrize("subtype, cut", [("PCM_16", 10000), ("PCM_16", 1), ("FLOAT", 4001)])
def test_truncated_wav_is_read_with_a_warning(tmp_path, caplog, subtype, cut):
    """A WAV cut short (an interrupted copy) still decodes: libsndfile quietly reads what is there."""
    path = tmp_path / "section_00_source_train_normal_0007_.wav"
    sf.write(path, _noise(), 16000, subtype=subtype)
    data_bytes = 16000 * (2 if subtype == "PCM_16" else 4)
    path.write_bytes(path.read_bytes()[:-cut])
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        wave = read_clip(path, 16000)
    assert len(wave) == (data_bytes - cut) // (data_bytes // 16000)
    assert caplog.messages == [
        f"{path}: truncated: its header promises {data_bytes} bytes of audio, the file holds "
        f"{data_bytes - cut}; only its first {len(wave) / 16000:.2f} s are used"
    ]


@pytest.mark.parametrize("streamed", [False, True])
def test_a_complete_clip_reads_without_a_warning(tmp_path, caplog, streamed):
    path = tmp_path / "clip.wav"
    sf.write(path, _noise(), 16000, subtype="FLOAT")
    if streamed:  # a writer streaming to a pipe cannot go back to fill in the lengths
        header = bytearray(path.read_bytes())
        data = header.index(b"data")
        header[4:8] = header[data + 4 : data + 8] = b"\xff\xff\xff\xff"
        path.write_bytes(header)
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        assert len(read_clip(path, 16000)) == 16000
    assert caplog.messages == []


def test_digital_silence_is_read_with_a_warning(tmp_path, caplog):
    path = tmp_path / "section_00_source_test_normal_0002_.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="datasets.audio"):
        assert not read_clip(path, 16000).any()
    assert caplog.messages == [f"{path}: every sample is 0 (digital silence): check the recording"]
