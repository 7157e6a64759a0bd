"""The autoencoder networks: the registry agrees with the configuration's choices, every network
maps context vectors to their shape through its bottleneck, the convolutional one for any mel
count, and the VAE's sampling, divergence and loss."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

from core.config import AutoencoderNetwork, load_config
from networks.autoencoder.conv import ConvAutoencoder
from networks.autoencoder.networks import NETWORKS, build_network
from networks.autoencoder.vae import VariationalAutoencoder


def _settings(**changes):
    return dataclasses.replace(load_config().autoencoder, **changes)


def test_the_registry_holds_exactly_the_configurable_networks():
    assert list(NETWORKS) == list(typing.get_args(AutoencoderNetwork)) == ["dense", "conv", "lstm", "vae"]


@pytest.mark.parametrize("network", list(NETWORKS))
def test_every_network_reconstructs_context_vectors_through_its_bottleneck(network):
    torch.manual_seed(0)
    net = build_network(640, _settings(network=network)).eval()
    x = torch.randn(7, 640)
    assert net.input_dim == 640
    assert net(x).shape == (7, 640)
    assert net.encode(x).shape == (7, 8)  # encoder_dims[-1] is every network's bottleneck
    reconstruction, divergence = net.reconstruct(x)
    torch.testing.assert_close(reconstruction, net(x), rtol=0, atol=0)
    assert (divergence is not None) == (network == "vae")


@pytest.mark.parametrize("n_mels", [128, 37, 64, 1])
def test_the_convolutional_network_restores_any_mel_count(n_mels):
    net = ConvAutoencoder(frames=3, n_mels=n_mels, channels=[4, 8, 8], kernel=5, bottleneck=6, momentum=0.1, eps=1e-5)
    assert net.eval()(torch.randn(2, 3 * n_mels)).shape == (2, 3 * n_mels)


def test_the_conv_settings_shape_the_network():
    net = build_network(640, _settings(network="conv", conv_channels=[4, 6], conv_kernel=7))
    convs = [m for m in net.encoder if isinstance(m, torch.nn.Conv1d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [(5, 4, 7), (4, 6, 7)]
    lstm = build_network(640, _settings(network="lstm", lstm_hidden=24))
    assert lstm.encoder.hidden_size == lstm.decoder.hidden_size == 24


def test_the_vae_samples_in_training_and_uses_the_posterior_mean_to_evaluate():
    torch.manual_seed(0)
    net = VariationalAutoencoder(20, [16, 4], beta=1.0, momentum=0.1, eps=1e-5)
    x = torch.randn(32, 20)
    net.train()
    same = [net.loss(x, torch.Generator().manual_seed(5)) for _ in range(2)]
    other = net.loss(x, torch.Generator().manual_seed(6))
    assert same[0] == same[1] != other  # the draws follow the generator alone
    net.eval()
    reconstruction, divergence = net.reconstruct(x)
    torch.testing.assert_close(reconstruction, net(x), rtol=0, atol=0)
    assert divergence.shape == (32,) and bool((divergence >= 0).all())


def test_the_vae_divergence_is_the_closed_form_kl_and_beta_weighs_it():
    net = VariationalAutoencoder(20, [16, 4], beta=0.0, momentum=0.1, eps=1e-5).eval()
    with torch.no_grad():  # a posterior N(1, e^-2) in every one of the 4 code dimensions
        net.posterior.weight.zero_()
        net.posterior.bias.copy_(torch.tensor([1.0] * 4 + [-2.0] * 4))
    _, divergence = net.reconstruct(torch.randn(3, 20))
    per_dim = 0.5 * (1.0 + torch.exp(torch.tensor(-2.0)) - 1.0 + 2.0)
    torch.testing.assert_close(divergence, torch.full((3,), 4 * float(per_dim)))
    x = torch.randn(8, 20)
    net.train()
    plain = net.loss(x, torch.Generator().manual_seed(1))
    net.beta = 2.0
    weighted = net.loss(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(weighted - plain, 2.0 * 4 * per_dim / 20)
