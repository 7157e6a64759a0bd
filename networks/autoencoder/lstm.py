"""An LSTM autoencoder on frame sequences (`autoencoder.network: lstm`).

It reconstructs the same context vectors as the dense network, read as sequences of `frames`
log-mel frames: batch normalisation per mel band (the log-mels are in dB, far outside the range
where LSTM gates respond), an encoder LSTM whose last hidden state is mapped to the bottleneck,
and a decoder LSTM that unrolls the code, fed at every step, back into `frames` frames through a
linear output layer, to which the mean spectrum that the normalisation tracks is added back. It sees the order of the frames, which the dense network only sees as
positions in a vector. Reads and writes nothing.
"""

from __future__ import annotations

import torch
from torch import nn

from core.config import AutoencoderConfig
from networks.autoencoder.model import ContextAutoencoder, MelCentring


class LstmAutoencoder(ContextAutoencoder):
    """Reconstructs [batch, frames * n_mels] context vectors as [batch, frames, n_mels] sequences.

    Args:
        frames, n_mels: the sequence shape (input_dim = frames * n_mels).
        hidden: hidden units of each LSTM.
        bottleneck: width of the code between encoder and decoder.
        momentum, eps: batch normalisation of the input (PyTorch's momentum convention).
    """

    def __init__(self, frames: int, n_mels: int, hidden: int, bottleneck: int, momentum: float, eps: float) -> None:
        super().__init__()
        self.frames, self.n_mels, self.input_dim = frames, n_mels, frames * n_mels
        self.centring = MelCentring(n_mels, momentum, eps)
        self.encoder = nn.LSTM(n_mels, hidden, batch_first=True)
        self.to_code = nn.Linear(hidden, bottleneck)
        self.from_code = nn.Sequential(nn.Linear(bottleneck, hidden), nn.ReLU())
        self.decoder = nn.LSTM(hidden, hidden, batch_first=True)
        self.output = nn.Linear(hidden, n_mels)

    @classmethod
    def from_config(cls, input_dim: int, cfg: AutoencoderConfig) -> LstmAutoencoder:
        return cls(
            cfg.frames,
            input_dim // cfg.frames,
            cfg.lstm_hidden,
            cfg.encoder_dims[-1],
            cfg.batch_norm_momentum,
            cfg.batch_norm_eps,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, frames * n_mels] -> [batch, bottleneck]."""
        sequence = self.centring(x.view(len(x), self.frames, self.n_mels))
        _, (last, _) = self.encoder(sequence)  # last: [1, batch, hidden]
        return self.to_code(last[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, frames * n_mels] -> [batch, frames * n_mels] reconstruction."""
        steps = self.from_code(self.encode(x)).unsqueeze(1).expand(-1, self.frames, -1)
        unrolled, _ = self.decoder(steps.contiguous())
        return self.centring.restore(self.output(unrolled)).reshape(len(x), self.input_dim)
