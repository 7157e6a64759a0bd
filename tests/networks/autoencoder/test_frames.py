"""Context vectors built per batch from the frame bank equal the official stacking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from networks.autoencoder.frames import FrameBank, too_short


def _official_vectors(log_mel: np.ndarray, frames: int) -> np.ndarray:
    """The official definition, written out: the block of columns t holds frame t + v of vector v.

    log_mel: [n_frames, n_mels] -> [n_frames - frames + 1, frames * n_mels]."""
    n_frames, n_mels = log_mel.shape
    n_vectors = n_frames - frames + 1
    vectors = np.zeros((n_vectors, frames * n_mels), dtype=np.float32)
    for t in range(frames):
        vectors[:, n_mels * t : n_mels * (t + 1)] = log_mel[t : t + n_vectors]
    return vectors


def test_vectors_equal_the_official_stacking_for_every_clip():
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((n, 3)).astype(np.float32) for n in (9, 5, 6)]
    bank = FrameBank(list(clips), context=5)
    assert bank.vectors_per_clip.tolist() == [5, 1, 2]
    starts, clip_ids = bank.vector_starts()
    assert clip_ids.tolist() == [0] * 5 + [1] + [2] * 2
    got = bank.gather(starts).numpy()
    np.testing.assert_array_equal(got, np.concatenate([_official_vectors(x, 5) for x in clips]))


def test_a_subset_of_clips_and_a_shuffled_batch():
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal((n, 4)).astype(np.float32) for n in (7, 8, 6)]
    bank = FrameBank(list(clips), context=3)
    starts, clip_ids = bank.vector_starts([2, 0])
    assert clip_ids.tolist() == [0] * 4 + [1] * 5
    expected = np.concatenate([_official_vectors(clips[2], 3), _official_vectors(clips[0], 3)])
    order = torch.from_numpy(rng.permutation(len(starts)))
    np.testing.assert_array_equal(bank.gather(starts[order]).numpy(), expected[order.numpy()])


def test_each_frame_is_stored_once_and_the_input_list_is_released():
    clips = [np.zeros((313, 128), np.float32)] * 4
    bank = FrameBank(clips, context=5)
    assert bank.frames.shape == (4 * 313, 128)  # not 4 * 309 vectors of 640 values
    assert bank.vector_dim == 640
    assert clips == []  # the bank holds the only copy


def test_clips_shorter_than_the_context_are_found_and_refused():
    clips = [np.zeros((6, 2), np.float32), np.zeros((4, 2), np.float32)]
    assert too_short(clips, 5) == [1]
    with pytest.raises(ValueError, match="fewer than 5 frames"):
        FrameBank(clips, context=5)
