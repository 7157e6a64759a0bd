"""`autoencoder.network` name -> network class; every one reconstructs the same context vectors.

Reads and writes nothing.
"""

from __future__ import annotations

from core.config import AutoencoderConfig
from networks.autoencoder.conv import ConvAutoencoder
from networks.autoencoder.lstm import LstmAutoencoder
from networks.autoencoder.model import ContextAutoencoder, DenseAutoencoder
from networks.autoencoder.vae import VariationalAutoencoder

# Its keys are the choices of `core.config.AutoencoderNetwork` (a test checks that they agree).
NETWORKS: dict[str, type[ContextAutoencoder]] = {
    "dense": DenseAutoencoder,
    "conv": ConvAutoencoder,
    "lstm": LstmAutoencoder,
    "vae": VariationalAutoencoder,
}


def build_network(input_dim: int, cfg: AutoencoderConfig) -> ContextAutoencoder:
    """A fresh network of the kind `cfg.network` for context vectors of `input_dim` values.

    Raises:
        KeyError: `cfg.network` is not a known network; the message lists the valid names.
    """
    if cfg.network not in NETWORKS:
        raise KeyError(f"unknown autoencoder.network {cfg.network!r}; valid: {', '.join(NETWORKS)}")
    return NETWORKS[cfg.network].from_config(input_dim, cfg)
