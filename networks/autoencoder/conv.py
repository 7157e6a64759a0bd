"""A convolutional autoencoder on log-mel patches (`autoencoder.network: conv`).

It reconstructs the same context vectors as the dense network, seen as [frames, n_mels] patches:
the frames are the input channels of 1-D convolutions along the mel axis (a 2-D convolution
whose kernel spans every frame of the short patch), so the weights are shared across frequency
and a spectral pattern is recognised wherever it lies. The input is first standardised per mel
band, and the output is the reconstructed deviation plus the mean spectrum that this tracks (a
convolution has too few output weights to move tens of dB quickly). Each convolution halves the mel axis
(stride 2) and is followed by batch normalisation and ReLU; a dense layer maps the last feature
map to the bottleneck, and transposed convolutions mirror the encoder back to the patch. With the
defaults (5 x 128 patch, channels 8, 16, 16, kernel 3): 128 -> 64 -> 32 -> 16 mel positions,
256 values -> 8 -> 256 -> patch. Reads and writes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from core.config import AutoencoderConfig
from networks.autoencoder.model import ContextAutoencoder, MelCentring, dense_block


class ConvAutoencoder(ContextAutoencoder):
    """Reconstructs [batch, frames * n_mels] context vectors through convolutions along the mels.

    Args:
        frames, n_mels: the patch shape (input_dim = frames * n_mels).
        channels: output channels of the encoder's convolutions; each halves the mel axis.
        kernel: odd kernel length along the mel axis.
        bottleneck: width of the code between encoder and decoder.
        momentum, eps: batch normalisation (PyTorch's momentum convention).
    """

    def __init__(
        self, frames: int, n_mels: int, channels: list[int], kernel: int, bottleneck: int, momentum: float, eps: float
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("autoencoder.conv_channels must name at least one convolution")
        if kernel % 2 == 0:
            raise ValueError(f"autoencoder.conv_kernel must be odd, got {kernel}")
        self.frames, self.n_mels, self.input_dim = frames, n_mels, frames * n_mels
        self.centring = MelCentring(n_mels, momentum, eps)
        lengths = [n_mels]  # mel positions after each convolution: ceil(length / 2)
        for _ in channels:
            lengths.append((lengths[-1] + 1) // 2)
        widths = [frames] + list(channels)
        encoder: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            encoder += [
                nn.Conv1d(n_in, n_out, kernel, stride=2, padding=kernel // 2),
                nn.BatchNorm1d(n_out, momentum=momentum, eps=eps),
                nn.ReLU(),
            ]
        flat = channels[-1] * lengths[-1]
        encoder += [nn.Flatten(), *dense_block(flat, bottleneck, momentum, eps)]
        decoder: list[nn.Module] = [
            *dense_block(bottleneck, flat, momentum, eps),
            nn.Unflatten(1, (channels[-1], lengths[-1])),
        ]
        back = list(zip(widths[::-1][:-1], widths[::-1][1:], lengths[::-1][1:]))  # (in, out, length to restore)
        for i, (n_in, n_out, length) in enumerate(back):
            # an even length was halved exactly and needs one more output position to come back
            decoder.append(
                nn.ConvTranspose1d(n_in, n_out, kernel, stride=2, padding=kernel // 2, output_padding=1 - length % 2)
            )
            if i < len(back) - 1:  # the output layer is linear, as the dense network's
                decoder += [nn.BatchNorm1d(n_out, momentum=momentum, eps=eps), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    @classmethod
    def from_config(cls, input_dim: int, cfg: AutoencoderConfig) -> ConvAutoencoder:
        return cls(
            cfg.frames,
            input_dim // cfg.frames,
            cfg.conv_channels,
            cfg.conv_kernel,
            cfg.encoder_dims[-1],
            cfg.batch_norm_momentum,
            cfg.batch_norm_eps,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, frames * n_mels] -> [batch, bottleneck]."""
        return self.encoder(self.centring(x.view(len(x), self.frames, self.n_mels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, frames * n_mels] -> [batch, frames * n_mels] reconstruction."""
        return self.centring.restore(self.decoder(self.encode(x))).reshape(len(x), self.input_dim)
