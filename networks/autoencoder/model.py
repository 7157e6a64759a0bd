"""The dense autoencoder of the official DCASE Task 2 baseline, as a plain PyTorch module.

Input and output are context vectors: `frames` consecutive log-mel frames concatenated, frame by
frame (5 x 128 = 640 values). With the official widths the layers are
640 -> 128 -> 128 -> 128 -> 128 -> 8 -> 128 -> 128 -> 128 -> 128 -> 640: every dense layer but
the last is followed by batch normalisation and ReLU (the bottleneck too), the output layer is
linear. Reads and writes nothing.

`ContextAutoencoder` is what every autoencoder network (`networks.autoencoder.networks`) is to
training and scoring: context vectors in, their reconstruction out, and a training loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import AutoencoderConfig


def dense_block(n_in: int, n_out: int, momentum: float, eps: float) -> list[nn.Module]:
    """Linear, batch normalisation, ReLU: the official network's layer."""
    return [nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out, momentum=momentum, eps=eps), nn.ReLU()]


class ContextAutoencoder(nn.Module):
    """A network that reconstructs [batch, frames * n_mels] context vectors (frame after frame).

    Subclasses define `forward` (the reconstruction) and `encode` (the bottleneck); a variational
    one also overrides `loss` and `reconstruct`.
    """

    input_dim: int

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training loss of a [batch, input_dim] batch: the mean squared reconstruction error.

        `generator` serves networks that sample (fixed per epoch, so a resumed run repeats the draws).
        """
        return F.mse_loss(self(x).float(), x)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """[batch, input_dim] -> (reconstruction [batch, input_dim], None); a variational network
        returns its KL divergence [batch] in place of None."""
        return self(x), None


class MelCentring(nn.Module):
    """Batch normalisation per mel band of [batch, frames, n_mels] inputs, and the mean spectrum it
    tracks to add back to an output.

    Log-mels are in dB, tens of dB from zero: a network with few output weights (a convolution, an
    LSTM's output layer) would spend hundreds of steps moving its biases there. It reconstructs the
    deviation from the running mean spectrum instead, which `restore` adds back.
    """

    def __init__(self, n_mels: int, momentum: float, eps: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(n_mels, momentum=momentum, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, frames, n_mels] -> the same, standardised per mel band."""
        return self.norm(x.transpose(1, 2)).transpose(1, 2)

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        """[batch, frames, n_mels] deviations -> plus the running mean spectrum."""
        return y + self.norm.running_mean


class DenseAutoencoder(ContextAutoencoder):
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
            encoder += dense_block(n_in, n_out, momentum, eps)
        decoder_widths = widths[::-1][:-1]  # bottleneck, ..., first hidden width
        decoder: list[nn.Module] = []
        for n_in, n_out in zip(decoder_widths[:-1], decoder_widths[1:]):
            decoder += dense_block(n_in, n_out, momentum, eps)
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
