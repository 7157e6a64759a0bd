"""Every layer type of the neural systems under CPU bfloat16 autocast, against float32.

A correct bfloat16 kernel rounds its inputs and output to 8 significant bits (relative error
2**-9) and accumulates in float32. Measured here (AMD EPYC with AVX512-BF16; also with oneDNN
limited to AVX512_CORE, and to AVX2 or SSE4.1 where PyTorch's own bf16 kernels take over; ATen's
AVX2 and default kernels): at most 0.0061 of the output's largest value (self-attention) and
0.0047 of the gradient's norm. BF16_TOL leaves about 8 times
that; a kernel that computes wrongly in bfloat16 (oneDNN's grouped long-kernel convolution on AMX
CPUs: an error larger than the output itself) is far outside it. Such a layer is kept in float32,
which the last test checks to float32 precision.

Gradients are compared as one vector per layer (relative Euclidean norm): a per-tensor maximum is
meaningless for gradients that are zero in exact arithmetic (a key bias under softmax, a bias
before batch normalisation). The whole autoencoder is not compared, only its layers: where a
pre-activation changes sign between the two precisions its ReLUs route the gradient differently,
a legitimate difference of several percent.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from networks.autoencoder.model import DenseAutoencoder
from networks.auxiliary.model import ResidualBlock
from networks.beats import BEATs, load_beats
from networks.margin_heads import get_head
from networks.pooling import AttentiveStatisticsPooling, MeanPooling

BF16_TOL = 0.05

# (module, inputs, call(module, *inputs) -> output tensor)
Case = tuple[nn.Module, list[Tensor], Callable[..., Tensor]]


@pytest.fixture(scope="module")
def golden(beats_reference_dir: Path) -> dict[str, Tensor]:
    with np.load(beats_reference_dir / "tiny_beats_golden.npz") as data:
        return {k: torch.from_numpy(v) for k, v in data.items()}


@pytest.fixture(scope="module")
def beats(beats_reference_dir: Path) -> BEATs:
    model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt")
    model.cfg.encoder_layerdrop = 0.0  # random by design; off so both passes take the same layers
    return model


def _randn(*shape: int) -> Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def _attention(encoder, x: Tensor, mask: Tensor) -> Tensor:
    return encoder.layers[0].self_attn(x, encoder.position_bias(x.shape[1], x.device), mask)


def _encoder_layer(encoder, x: Tensor, mask: Tensor) -> Tensor:
    return encoder.layers[1](x, encoder.position_bias(x.shape[1], x.device), mask)


def _head(name: str) -> Callable[[BEATs, dict], Case]:
    def build(b: BEATs, g: dict) -> Case:
        labels = torch.arange(4).repeat(3)
        embeddings = 3 * _randn(4, 16)[labels] + _randn(12, 16)
        head = get_head(name, 16, 4, subclusters=3, margin=0.5, scale=30.0)
        return head, [embeddings, labels], lambda m, x, y: m(x, y)[0]

    return build


def _autoencoder_part(part: Callable[[DenseAutoencoder], nn.Module], width: int) -> Callable[[BEATs, dict], Case]:
    """A part of the real network (640 -> 128 -> 8 -> 128 -> 640) on context vectors or ReLU outputs."""

    def build(b: BEATs, g: dict) -> Case:
        x = 3 * _randn(256, 640) + 1 if width == 640 else torch.relu(_randn(256, width))
        return part(DenseAutoencoder(640, [128, 8], momentum=0.01, eps=1e-3)), [x], lambda m, x: m(x)

    return build


def _auxiliary_conv(dims: int, stride: int) -> Callable[[BEATs, dict], Case]:
    """A convolution of the auxiliary network's residual blocks and the batch normalisation after it
    (its ReLUs are left out, as the autoencoder's: a sign flip reroutes a gradient legitimately)."""

    def build(b: BEATs, g: dict) -> Case:
        block = ResidualBlock(dims, 8, 16, stride)
        x = _randn(4, 8, 20, 16) if dims == 2 else _randn(4, 8, 64)
        return nn.Sequential(block.conv1, block.norm2), [x], lambda m, x: m(x)

    return build


# Every layer type of BEATs, the pooling layers, the margin heads, the autoencoder and the auxiliary
# network, built from the tiny official-format checkpoint and its golden intermediate outputs.
CASES: dict[str, Callable[[BEATs, dict], Case]] = {
    "BEATs patch embedding (Conv2d)": lambda b, g: (b, [g["fbank"]], lambda m, x: m.patch_embedding(x.unsqueeze(1))),
    "BEATs LayerNorm": lambda b, g: (b, [3 * g["patch_tokens_ln"] + 1], lambda m, x: m.layer_norm(x)),
    "BEATs input projection (Linear)": lambda b, g: (b, [g["patch_tokens_ln"]], lambda m, x: m.post_extract_proj(x)),
    "BEATs positional convolution": lambda b, g: (
        b,
        [g["patch_tokens_proj"]],
        lambda m, x: m.encoder.pos_conv(x.transpose(1, 2)),
    ),
    "BEATs self-attention (gated position bias, padding mask)": lambda b, g: (
        b.encoder,
        [g["encoder_input_ln"], g["features_padding_mask"]],
        _attention,
    ),
    "BEATs encoder layer": lambda b, g: (b.encoder, [g["layer0_out"], g["features_padding_mask"]], _encoder_layer),
    "BEATs encoder, waveform to features": lambda b, g: (
        b,
        [g["waveform"], g["padding_mask"]],
        lambda m, w, k: m.extract_features(w, k)[0],
    ),
    "attentive statistics pooling": lambda b, g: (
        AttentiveStatisticsPooling(64, 32),
        [g["features"], g["features_padding_mask"]],
        lambda m, x, k: m(x, k),
    ),
    "mean pooling": lambda b, g: (
        MeanPooling(64),
        [g["features"], g["features_padding_mask"]],
        lambda m, x, k: m(x, k),
    ),
    "adacos head": _head("adacos"),
    "arcface head": _head("arcface"),
    "subcluster_adacos head": _head("subcluster_adacos"),
    "autoencoder Linear + BatchNorm1d (input)": _autoencoder_part(lambda n: nn.Sequential(*n.encoder[:2]), 640),
    "autoencoder Linear + BatchNorm1d (bottleneck)": _autoencoder_part(lambda n: nn.Sequential(*n.encoder[3:5]), 128),
    "autoencoder output Linear": _autoencoder_part(lambda n: n.decoder[-1], 128),
    "auxiliary Conv2d 3x3 (stride 2) + BatchNorm2d": _auxiliary_conv(2, 2),
    "auxiliary Conv1d 3 + BatchNorm1d": _auxiliary_conv(1, 1),
}


def _build(name: str, beats: BEATs, golden: dict) -> Case:
    torch.manual_seed(0)  # the initial weights of the layers built here
    return CASES[name](beats, golden)


def _run(case: Case, train: bool, autocast: bool) -> tuple[Tensor, Tensor]:
    """Output and all gradients (inputs, then parameters; one flat vector) of one pass on a fresh copy."""
    module, inputs, call = case
    module = copy.deepcopy(module).train(train)
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = call(module, *inputs)
    # Backward outside autocast, as the trainers do; fixed weights give every output its own gradient.
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (out.float() * weights).sum().backward()
    grads = [x.grad for x in inputs if x.grad is not None] + [p.grad for p in module.parameters() if p.grad is not None]
    return out.detach().float(), torch.cat([g.flatten() for g in grads])


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", CASES)
def test_layer_under_bf16_autocast_matches_float32(beats, golden, name, train):
    case = _build(name, beats, golden)
    ref, ref_grad = _run(case, train, autocast=False)
    out, grad = _run(case, train, autocast=True)
    out_error = float((out - ref).abs().max() / ref.abs().max())
    grad_error = float((grad - ref_grad).norm() / ref_grad.norm())
    print(f"{name} ({'train' if train else 'eval'}): output {out_error:.2e}, gradient {grad_error:.2e}")
    assert out_error < BF16_TOL, f"{name}: bf16 output off by {out_error:.3f} of its largest value"
    assert grad_error < BF16_TOL, f"{name}: bf16 gradient off by {grad_error:.3f} of its norm"


@pytest.mark.parametrize("name", ["BEATs positional convolution", "adacos head"])
def test_layers_kept_in_float32_are_float32_under_autocast(beats, golden, name):
    """The positional convolution (wrong in oneDNN's bf16 on AMX CPUs) and the margin heads'
    cosine (magnified by ArcFace's sine and the scale) run in float32 whatever the autocast."""
    module, inputs, call = _build(name, beats, golden)
    if name == "adacos head":
        call = lambda m, x, _: m.cosine(x)  # noqa: E731 - the cosine itself, not the loss after it
    with torch.no_grad():
        ref = call(module, *inputs)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = call(module, *inputs)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-7)
