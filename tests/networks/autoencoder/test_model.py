"""The dense autoencoder: the official layer shapes, batch-norm settings and parameter count."""

from __future__ import annotations

import torch
from torch import nn

from core.config import load_config
from networks.autoencoder.model import DenseAutoencoder

OFFICIAL_LINEAR_SHAPES = [  # (in, out) of every dense layer, input to output
    (640, 128),
    (128, 128),
    (128, 128),
    (128, 128),
    (128, 8),
    (8, 128),
    (128, 128),
    (128, 128),
    (128, 128),
    (128, 640),
]


def _official_network() -> DenseAutoencoder:
    cfg = load_config()
    return DenseAutoencoder.from_config(cfg.autoencoder.frames * cfg.feature.n_mels, cfg.autoencoder)


def test_layer_shapes_are_the_official_ones():
    net = _official_network()
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == OFFICIAL_LINEAR_SHAPES
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm1d)]
    assert [m.num_features for m in norms] == [out for _, out in OFFICIAL_LINEAR_SHAPES[:-1]]
    assert all(m.momentum == 0.01 and m.eps == 1e-3 for m in norms)
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 9


def test_every_layer_but_the_output_is_followed_by_batch_norm_and_relu():
    net = _official_network()
    layers = list(net.encoder) + list(net.decoder)
    kinds = [type(m).__name__ for m in layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU"] * 9 + ["Linear"]


def test_parameter_count():
    # dense layers: 640*128+128 + 3*(128*128+128) + 128*8+8 + 8*128+128 + 3*(128*128+128) + 128*640+640
    # batch norm: 2 * (8*128 + 8)
    net = _official_network()
    assert sum(p.numel() for p in net.parameters()) == 265_864 + 2_064


def test_forward_and_bottleneck_shapes():
    net = _official_network().eval()
    x = torch.randn(7, 640)
    assert net(x).shape == (7, 640)
    assert net.encode(x).shape == (7, 8)


def test_other_widths_mirror_the_encoder():
    net = DenseAutoencoder(input_dim=20, encoder_dims=[16, 4], momentum=0.1, eps=1e-5)
    shapes = [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]
    assert shapes == [(20, 16), (16, 4), (4, 16), (16, 20)]
