"""The auxiliary-classification network: a compact residual CNN per input branch -> one embedding.

Reads nothing and writes nothing; a plain PyTorch module.

Branches (any non-empty subset, in this order):
- `logmel`: the log-mel spectrogram `[batch, frames, n_mels]` through a 2-D ResNet (a strided stem
  and max pooling, then one stage of basic blocks per width in `channels`, each after the first
  halving both axes); the frequency axis is kept, flattened with the channels, and the time axis
  is pooled (`networks.pooling`), so clips of any length give one vector.
- `spectrum`: the log power spectrum of the whole clip `[batch, bins]` (`datasets.features`)
  through the same residual design in 1-D, flattened.
Each branch ends in a linear map to `embedding_dim`; the embedding is their concatenation
(`[batch, embedding_dim * branches]`), which the margin head classifies and the scorers use.

Inputs are standardised per band by statistics of the training clips, held as buffers so they
travel with the weights (`set_input_statistics`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from networks.pooling import get_pooling

BRANCHES = ("logmel", "spectrum")
STD_FLOOR = 1e-3  # dB; a constant band (e.g. above a low-pass) must not blow up


def check_branches(branches: list[str]) -> None:
    """Raise a KeyError naming the valid branches, or a ValueError for an empty or repeated list."""
    unknown = [b for b in branches if b not in BRANCHES]
    if unknown:
        raise KeyError(f"unknown auxiliary.branches {unknown}; valid: {', '.join(BRANCHES)}")
    if not branches or len(set(branches)) != len(branches):
        raise ValueError(
            f"auxiliary.branches must name each of {', '.join(BRANCHES)} at most once, and at least one; got {branches}"
        )


class ResidualBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv twice, identity or 1x1 projection shortcut) in 1-D or 2-D."""

    def __init__(self, dims: int, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        conv, norm = (nn.Conv1d, nn.BatchNorm1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d)
        self.norm1 = norm(c_in)
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm2 = norm(c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = conv(c_in, c_out, 1, stride=stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: Tensor) -> Tensor:
        pre = torch.relu(self.norm1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(torch.relu(self.norm2(out)))
        return out + shortcut


def _trunk(dims: int, channels: list[int], blocks: int) -> nn.Sequential:
    """Stem (3-wide conv, stride 2, then max pooling 2: a quarter of the resolution per axis), then
    `blocks` residual blocks per width; each stage after the first halves the resolution."""
    conv, norm, pool = (
        (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d) if dims == 1 else (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d)
    )
    layers: list[nn.Module] = [
        conv(1, channels[0], 3, stride=2, padding=1, bias=False),
        norm(channels[0]),
        nn.ReLU(),
        pool(2, ceil_mode=True),
    ]
    c_in = channels[0]
    for stage, c_out in enumerate(channels):
        for block in range(blocks):
            layers.append(ResidualBlock(dims, c_in, c_out, stride=2 if stage > 0 and block == 0 else 1))
            c_in = c_out
    layers += [norm(c_in), nn.ReLU()]
    return nn.Sequential(*layers)


def downsampling(channels: list[int]) -> int:
    """Factor by which a trunk of these stages shrinks each axis (stem 4, then 2 per later stage)."""
    return 4 * 2 ** (len(channels) - 1)


def _reduced(size: int, channels: list[int]) -> int:
    """Length of an axis of `size` after the trunk (every strided layer rounds up)."""
    size = -(-size // 2)  # stem conv
    size = -(-size // 2)  # max pooling, ceil mode
    for _ in channels[1:]:
        size = -(-size // 2)
    return size


class Standardise(nn.Module):
    """Per-band standardisation by fixed training statistics (buffers; identity until set)."""

    def __init__(self, bands: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(bands))
        self.register_buffer("std", torch.ones(bands))

    def forward(self, x: Tensor) -> Tensor:
        """`[batch, ..., bands]` -> the same shape, standardised."""
        return (x - self.mean) / self.std


class LogMelBranch(nn.Module):
    """`[batch, frames, n_mels]` standardised log-mel -> `[batch, embedding_dim]`."""

    def __init__(
        self, n_mels: int, channels: list[int], blocks: int, pooling: str, attention_dim: int, embedding_dim: int
    ) -> None:
        super().__init__()
        self.trunk = _trunk(2, channels, blocks)
        width = channels[-1] * _reduced(n_mels, channels)
        self.pooling = get_pooling(pooling, width, attention_dim)
        self.projection = nn.Linear(self.pooling.out_dim, embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        features = self.trunk(x.unsqueeze(1))  # [batch, channels, frames', mels']
        tokens = features.permute(0, 2, 1, 3).flatten(2)  # [batch, frames', channels * mels']
        return self.projection(self.pooling(tokens))


class SpectrumBranch(nn.Module):
    """`[batch, bins]` standardised log spectrum -> `[batch, embedding_dim]`."""

    def __init__(self, bins: int, channels: list[int], blocks: int, embedding_dim: int) -> None:
        super().__init__()
        self.trunk = _trunk(1, channels, blocks)
        self.projection = nn.Linear(channels[-1] * _reduced(bins, channels), embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.trunk(x.unsqueeze(1)).flatten(1))


class AuxiliaryNet(nn.Module):
    """Branches -> concatenated embedding; the margin head lives beside it (`head`), used in training
    and by the softmax scorer.

    Args:
        branches: names from BRANCHES.
        n_mels, bins: input sizes of the log-mel and spectrum branches.
        channels: widths of the residual stages; blocks: residual blocks per stage.
        pooling, attention_dim: time pooling of the log-mel branch (`networks.pooling`).
        embedding_dim: output width of each branch.
        head: a margin head over the classes (`networks.margin_heads`), or None.
    """

    def __init__(
        self,
        branches: list[str],
        n_mels: int,
        bins: int,
        channels: list[int],
        blocks: int,
        pooling: str,
        attention_dim: int,
        embedding_dim: int,
        head: nn.Module | None,
    ) -> None:
        super().__init__()
        check_branches(branches)
        if not channels or blocks < 1:
            raise ValueError(
                f"the network needs at least one stage and one block per stage, got channels {channels}, "
                f"blocks {blocks}"
            )
        self.branches = list(branches)
        self.standardise = nn.ModuleDict()
        self.encoders = nn.ModuleDict()
        if "logmel" in branches:
            self.standardise["logmel"] = Standardise(n_mels)
            self.encoders["logmel"] = LogMelBranch(n_mels, channels, blocks, pooling, attention_dim, embedding_dim)
        if "spectrum" in branches:
            self.standardise["spectrum"] = Standardise(bins)
            self.encoders["spectrum"] = SpectrumBranch(bins, channels, blocks, embedding_dim)
        self.embedding_dim = embedding_dim * len(branches)
        self.head = head

    @torch.no_grad()
    def set_input_statistics(self, branch: str, mean: Tensor, std: Tensor) -> None:
        """Fix a branch's per-band input mean and standard deviation `[bands]` (floored)."""
        self.standardise[branch].mean.copy_(mean)
        self.standardise[branch].std.copy_(std.clamp_min(STD_FLOOR))

    def normalise(self, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        """Raw inputs (branch -> `[batch, frames, n_mels]` or `[batch, bins]`, dB) -> standardised."""
        return {b: self.standardise[b](inputs[b].float()) for b in self.branches}

    def embed_normalised(self, inputs: dict[str, Tensor]) -> Tensor:
        """Standardised inputs -> embeddings `[batch, embedding_dim * branches]`."""
        return torch.cat([self.encoders[b](inputs[b]) for b in self.branches], dim=1)

    def embed(self, inputs: dict[str, Tensor]) -> Tensor:
        """Raw inputs -> embeddings `[batch, embedding_dim * branches]`."""
        return self.embed_normalised(self.normalise(inputs))

    def forward(self, inputs: dict[str, Tensor], targets: Tensor | None = None) -> tuple[Tensor | None, Tensor, Tensor]:
        """Standardised inputs (+ targets: class indices `[batch]` or class weights `[batch, classes]`)
        -> (per-clip losses `[batch]` or None, class logits `[batch, classes]`, embeddings)."""
        if self.head is None:
            raise RuntimeError("this network has no classification head")
        embeddings = self.embed_normalised(inputs)
        losses, logits = self.head(embeddings, targets)
        return losses, logits, embeddings
