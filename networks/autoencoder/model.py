"""The dense autoencoder of the official DCASE Task 2 baseline, as a plain PyTorch module.

Input and output are context vectors: `frames` consecutive log-mel frames concatenated, frame by
frame (5 x 128 = 640 values). With the official widths the layers are
640 -> 128 -> 128 -> 128 -> 128 -> 8 -> 128 -> 128 -> 128 -> 128 -> 640: every dense layer but
the last is followed by batch normalisation and ReLU (the bottleneck too), the output layer is
linear. Reads and writes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from core.config import AutoencoderConfig


def _dense_block(n_in: int, n_out: int, momentum: float, eps: float) -> list[nn.Module]:
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=momentum, eps=eps), nn.ReLU()]


class DenseAutoencoder(nn.Module):
    """Reconstructs context vectors through a narrow bottleneck.

    Args:
        input_dim: length of a context vector (frames x n_mels).
        encoder_dims: widths of the encoder's layers; the last one is the bottleneck. The decoder
            mirrors the others, then a linear layer maps back to `input_dim`.
        momentum, eps: batch normalisation (PyTorch's momentum convention).
    """

    def __init__(self, input_dim: int, encoder_dims: list[int], momentum: float, eps: float) -> None:
        super().__init__()
        if not encoder_dims:
            raise ValueError("autoencoder.encoder_dims must name at least one layer width")
        widths = [input_dim] + list(encoder_dims)
        encoder: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            encoder += _dense_block(n_in, n_out, momentum, eps)
        decoder_widths = widths[::-1][:-1]  # bottleneck, ..., first hidden width
        decoder: list[nn.Module] = []
        for n_in, n_out in zip(decoder_widths[:-1], decoder_widths[1:]):
            decoder += _dense_block(n_in, n_out, momentum, eps)
        decoder.append(nn.Linear(decoder_widths[-1], input_dim))
        self.input_dim = input_dim
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    @classmethod
    def from_config(cls, input_dim: int, cfg: AutoencoderConfig) -> DenseAutoencoder:
        return cls(input_dim, cfg.encoder_dims, cfg.batch_norm_momentum, cfg.batch_norm_eps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, input_dim] -> [batch, bottleneck]."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, input_dim] -> [batch, input_dim] reconstruction."""
        return self.decoder(self.encoder(x))
