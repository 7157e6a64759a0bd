"""Log-mel spectrograms of many clips -> context vectors, stacked on the fly per batch.

The official baseline stacks `frames` consecutive log-mel frames into one vector (frame after
frame: 5 x 128 = 640 values) for every position of every clip, and holds all of those vectors
in memory: five copies of every frame. `FrameBank` keeps each frame once, in one contiguous
[total_frames, n_mels] tensor, and builds the vectors of a batch from their start indices when
they are needed. Reads and writes nothing.
"""

from __future__ import annotations

import numpy as np
import torch


class FrameBank:
    """The frames of many clips and the context vectors they hold.

    Args:
        log_mels: one [frames_i, n_mels] float32 array per clip; every clip needs at least
            `context` frames (see `too_short`). The list is emptied while its arrays are
            copied into the bank, so the frames are never held twice.
        context: frames per context vector.

    Attributes:
        frames: [total_frames, n_mels] float32, the clips one after another.
        offsets: [n_clips] int64, index of each clip's first frame.
        vectors_per_clip: [n_clips] int64, frames_i - context + 1.
    """

    def __init__(self, log_mels: list[np.ndarray], context: int) -> None:
        if context < 1:
            raise ValueError(f"autoencoder.frames must be at least 1, got {context}")
        if not log_mels:
            raise ValueError("no clips to build context vectors from")
        short = too_short(log_mels, context)
        if short:
            raise ValueError(f"clip(s) {short} have fewer than {context} frames")
        lengths = torch.tensor([len(x) for x in log_mels], dtype=torch.int64)
        n_mels = log_mels[0].shape[1]
        self.context = context
        self.n_mels = n_mels
        self.frames = torch.empty((int(lengths.sum()), n_mels), dtype=torch.float32)
        self.offsets = torch.cumsum(lengths, 0) - lengths
        target = self.frames.numpy()  # shares memory with self.frames
        for i, offset in enumerate(self.offsets.tolist()):
            x, log_mels[i] = log_mels[i], None  # release each clip's array (or memory map) once copied
            target[offset : offset + len(x)] = x
        log_mels.clear()
        self.vectors_per_clip = lengths - context + 1
        self._window = torch.arange(context, dtype=torch.int64)

    @property
    def n_clips(self) -> int:
        return len(self.offsets)

    @property
    def vector_dim(self) -> int:
        return self.context * self.n_mels

    def to(self, device: torch.device) -> FrameBank:
        """Move the frames (and index helpers) to `device`, e.g. a GPU, so batches are built there."""
        self.frames = self.frames.to(device)
        self._window = self._window.to(device)
        return self

    def vector_starts(self, clip_indices: list[int] | np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Start frames of every context vector of the given clips (all clips if None).

        Returns:
            starts: [n_vectors] int64 global frame index of each vector's first frame.
            clip_ids: [n_vectors] int64 position of the vector's clip in `clip_indices`.
        """
        clips = torch.arange(self.n_clips) if clip_indices is None else torch.as_tensor(clip_indices, dtype=torch.int64)
        counts = self.vectors_per_clip[clips]
        clip_ids = torch.repeat_interleave(torch.arange(len(clips)), counts)
        first = torch.repeat_interleave(self.offsets[clips], counts)
        # position of each vector inside its clip: 0, 1, ..., counts_i - 1
        within = torch.arange(int(counts.sum())) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        return first + within, clip_ids

    def gather(self, starts: torch.Tensor) -> torch.Tensor:
        """[batch] start indices -> [batch, context * n_mels] context vectors, frame after frame."""
        index = starts.to(self.frames.device).unsqueeze(1) + self._window
        return self.frames[index].reshape(len(starts), self.vector_dim)


def too_short(log_mels: list[np.ndarray], context: int) -> list[int]:
    """Indices of the spectrograms with fewer than `context` frames (no context vector at all)."""
    return [i for i, x in enumerate(log_mels) if len(x) < context]
