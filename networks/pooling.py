"""Token sequence -> one fixed-size vector per clip: attentive statistics pooling or mean pooling.

Reads encoder features `[batch, tokens, channels]` with a token padding mask `[batch, tokens]`
(True = padded, or None); writes `[batch, out_dim]`. Padded tokens never contribute, so a clip
padded to the configured length pools to the same vector as the clip alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

VARIANCE_FLOOR = 1e-6  # keeps the std differentiable where a clip's tokens are (nearly) constant


class MeanPooling(nn.Module):
    """Average of the valid tokens; no parameters (the frozen-encoder option needs no training)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.out_dim = channels

    def forward(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`[batch, tokens, channels]` -> `[batch, channels]`."""
        if padding_mask is None:
            return features.mean(dim=1)
        valid = (~padding_mask).unsqueeze(-1).to(features.dtype)
        return (features * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1.0)


class AttentiveStatisticsPooling(nn.Module):
    """Attention-weighted mean and standard deviation of the tokens (Okabe et al., 2018).

    A small network scores every token (`tanh` hidden layer of `attention_dim`, one score per
    channel), the scores of valid tokens are softmax-normalised over time, and the weighted mean
    and the weighted standard deviation are concatenated.
    """

    def __init__(self, channels: int, attention_dim: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(
            nn.Linear(channels, attention_dim),
            nn.Tanh(),
            nn.Linear(attention_dim, channels),
        )
        self.out_dim = 2 * channels

    def forward(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`[batch, tokens, channels]` -> `[batch, 2 * channels]` (mean, then std)."""
        scores = self.attention(features).float()
        if padding_mask is not None:
            scores = scores.masked_fill(padding_mask.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(scores, dim=1)
        x = features.float()
        mean = (weights * x).sum(dim=1)
        variance = (weights * x * x).sum(dim=1) - mean * mean
        std = variance.clamp(min=VARIANCE_FLOOR).sqrt()
        return torch.cat([mean, std], dim=1).to(features.dtype)


POOLINGS = {"attentive": AttentiveStatisticsPooling, "mean": MeanPooling}


def get_pooling(name: str, channels: int, attention_dim: int) -> nn.Module:
    """A pooling layer by name (`beats.pooling`); unknown names list the valid ones."""
    if name not in POOLINGS:
        raise KeyError(f"unknown pooling {name!r}; valid: {', '.join(POOLINGS)}")
    if name == "attentive":
        return AttentiveStatisticsPooling(channels, attention_dim)
    return MeanPooling(channels)
