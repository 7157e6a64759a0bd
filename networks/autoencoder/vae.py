"""A variational autoencoder on context vectors (`autoencoder.network: vae`).

The dense network's encoder and decoder (same widths, batch normalisation and ReLU), with a
Gaussian code: the encoder's last layer gives the mean and log-variance of q(z | x) (linear, width
of the bottleneck each), the decoder reconstructs from a sample of it while training and from its
mean when evaluating. The training loss is the negative ELBO per input value, with a unit-variance
Gaussian decoder up to constants: the mean squared error plus `vae_beta` times the KL divergence
from the standard normal prior divided by the vector's length. Reads and writes nothing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.config import AutoencoderConfig
from networks.autoencoder.model import ContextAutoencoder, dense_block


class VariationalAutoencoder(ContextAutoencoder):
    """Reconstructs [batch, input_dim] context vectors through a sampled Gaussian code.

    Args:
        input_dim: length of a context vector (frames x n_mels).
        encoder_dims: widths of the encoder's layers; the last one is the code's dimension.
        beta: weight of the KL divergence in the loss.
        momentum, eps: batch normalisation (PyTorch's momentum convention).
    """

    def __init__(self, input_dim: int, encoder_dims: list[int], beta: float, momentum: float, eps: float) -> None:
        super().__init__()
        if not encoder_dims:
            raise ValueError("autoencoder.encoder_dims must name at least one layer width")
        *hidden, code = encoder_dims
        widths = [input_dim] + hidden
        encoder: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            encoder += dense_block(n_in, n_out, momentum, eps)
        decoder_widths = [code] + hidden[::-1]
        decoder: list[nn.Module] = []
        for n_in, n_out in zip(decoder_widths[:-1], decoder_widths[1:]):
            decoder += dense_block(n_in, n_out, momentum, eps)
        decoder.append(nn.Linear(decoder_widths[-1], input_dim))
        self.input_dim = input_dim
        self.beta = beta
        self.encoder = nn.Sequential(*encoder)
        self.posterior = nn.Linear(widths[-1], 2 * code)  # mean and log-variance
        self.decoder = nn.Sequential(*decoder)

    @classmethod
    def from_config(cls, input_dim: int, cfg: AutoencoderConfig) -> VariationalAutoencoder:
        return cls(input_dim, cfg.encoder_dims, cfg.vae_beta, cfg.batch_norm_momentum, cfg.batch_norm_eps)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, input_dim] -> [batch, code] posterior mean."""
        return self._posterior(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, input_dim] -> [batch, input_dim] reconstruction from the posterior mean."""
        return self.decoder(self.encode(x))

    def loss(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative ELBO per input value of a [batch, input_dim] batch, one code sample per vector."""
        mean, log_var = self._posterior(x)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        reconstruction = self.decoder(mean + noise * torch.exp(0.5 * log_var))
        return F.mse_loss(reconstruction.float(), x) + self.beta * _kl(mean, log_var).mean() / self.input_dim

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[batch, input_dim] -> reconstruction from the posterior mean [batch, input_dim] and the
        KL divergence of each vector's posterior from the prior [batch]."""
        mean, log_var = self._posterior(x)
        return self.decoder(mean), _kl(mean, log_var)

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.posterior(self.encoder(x)).chunk(2, dim=1)
        return mean, log_var


def _kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, 1)) of each row, [batch, code] -> [batch], in float32."""
    mean, log_var = mean.float(), log_var.float()
    return 0.5 * (mean**2 + log_var.exp() - 1.0 - log_var).sum(1)
