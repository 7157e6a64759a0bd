"""Margin-based classification heads on L2-normalised embeddings: AdaCos, ArcFace, sub-cluster AdaCos.

Reads embeddings `[batch, dim]` and, in training, targets: class indices `[batch]`, or class
weights `[batch, classes]` summing to one (mixup of two clips); writes per-clip cross-entropy
losses `[batch]` and class logits `[batch, classes]` (for accuracy). With weights, every class
of non-zero weight counts as a true class (its margin, the AdaCos statistics).

All heads compare the normalised embedding with normalised class centres (cosine similarity):
- `arcface` (Deng et al., 2019): fixed scale `s`, additive angular margin `m` on the true class;
- `adacos` (Zhang et al., 2019): no margin, and a scale that adapts during training to the
  batch: `s = ln(B_avg) / cos(min(pi/4, theta_med))`, where `B_avg` is the mean over the batch
  of the summed `exp(s cos)` of the wrong classes and `theta_med` the median angle to the true
  class; it starts at `sqrt(2) ln(C - 1)`;
- `subcluster_adacos` (Wilkinghoff, 2021): `K` centres per class, a softmax over all `C K`
  centres whose probabilities are summed per class, so a class may spread over several
  sub-clusters; the scale adapts as in AdaCos over the `C K` centres.

In a distributed run the adaptive scale is computed from the statistics of the whole global
batch (gathered from every process), so it does not depend on the number of processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from core.runtime import distributed_rank_and_size

MIN_SCALE = 1.0  # ln(C - 1) is 0 for two classes; the scale must stay positive


def true_classes(targets: Tensor, n_classes: int) -> Tensor:
    """`[batch, classes]` bool: each clip's true class (index targets), or every class of non-zero weight."""
    if targets.is_floating_point():
        return targets > 0
    return F.one_hot(targets, n_classes).bool()


def _gather(values: Tensor) -> Tensor:
    """Concatenate a 1-D tensor over all processes of a distributed run (sizes may differ)."""
    _, world = distributed_rank_and_size()
    if world == 1:
        return values
    size = torch.tensor([values.numel()], device=values.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros(longest, dtype=values.dtype, device=values.device)
    padded[: values.numel()] = values
    parts = [torch.zeros_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


class CosineHead(nn.Module):
    """Shared part: `centres` `[classes * per_class, dim]` and the cosine of an embedding to each."""

    def __init__(self, dim: int, n_classes: int, per_class: int = 1) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"a margin head needs at least two classes, got {n_classes}")
        self.n_classes = n_classes
        self.per_class = per_class
        self.centres = nn.Parameter(torch.empty(n_classes * per_class, dim))
        nn.init.xavier_uniform_(self.centres)

    def cosine(self, embeddings: Tensor) -> Tensor:
        """`[batch, dim]` -> `[batch, classes * per_class]` cosine similarities (float32)."""
        # Float32 also under autocast (a tiny GEMM): near cos = 1 a bfloat16 cosine is off by ~2**-9,
        # which ArcFace's sin = sqrt(1 - cos^2) and the scale (~30) magnify in the logits.
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            return F.linear(F.normalize(embeddings.float(), dim=1), F.normalize(self.centres.float(), dim=1))


class ArcFace(CosineHead):
    """Additive angular margin: the true class's logit is `s cos(theta + m)`."""

    def __init__(self, dim: int, n_classes: int, margin: float, scale: float) -> None:
        super().__init__(dim, n_classes)
        self.margin = margin
        self.scale = scale

    def forward(self, embeddings: Tensor, labels: Tensor | None = None) -> tuple[Tensor | None, Tensor]:
        """Returns (per-clip loss `[batch]` or None without labels, class logits `[batch, classes]`)."""
        cos = self.cosine(embeddings)
        logits = self.scale * cos
        if labels is None:
            return None, logits
        m = self.margin
        sin = (1.0 - cos * cos).clamp(min=0.0).sqrt()
        with_margin = cos * math.cos(m) - sin * math.sin(m)
        # Beyond theta = pi - m, cos(theta + m) would rise again; continue linearly instead so
        # the target logit keeps decreasing with the angle (the usual ArcFace safeguard).
        with_margin = torch.where(cos > math.cos(math.pi - m), with_margin, cos - math.sin(math.pi - m) * m)
        target = true_classes(labels, self.n_classes)
        margin_logits = self.scale * torch.where(target, with_margin, cos)
        return F.cross_entropy(margin_logits, labels, reduction="none"), logits


class AdaCos(CosineHead):
    """Adaptive scale, no margin; `scale` is a buffer so checkpoints keep it."""

    def __init__(self, dim: int, n_classes: int, per_class: int = 1) -> None:
        super().__init__(dim, n_classes, per_class)
        initial = max(math.sqrt(2.0) * math.log(n_classes * per_class - 1), MIN_SCALE)
        self.register_buffer("scale", torch.tensor(initial))

    def class_logits(self, scaled: Tensor) -> Tensor:
        """Scaled cosines `[batch, classes * per_class]` -> class logits `[batch, classes]`."""
        return scaled

    @torch.no_grad()
    def update_scale(self, cos: Tensor, labels: Tensor) -> None:
        """Set the scale from this (global) batch: `ln(B_avg) / cos(min(pi/4, theta_med))`."""
        target = true_classes(labels, self.n_classes).repeat_interleave(self.per_class, dim=1)
        others = torch.where(target, torch.zeros_like(cos), torch.exp(self.scale * cos)).sum(dim=1)
        closest_true = cos.masked_fill(~target, -2.0).max(dim=1).values.clamp(-1.0, 1.0)
        others, closest_true = _gather(others), _gather(closest_true)
        theta_med = torch.acos(closest_true).median()
        new = torch.log(others.mean()) / torch.cos(torch.clamp(theta_med, max=math.pi / 4))
        if torch.isfinite(new):
            self.scale.copy_(new.clamp(min=MIN_SCALE))

    def forward(self, embeddings: Tensor, labels: Tensor | None = None) -> tuple[Tensor | None, Tensor]:
        """Returns (per-clip loss `[batch]` or None without labels, class logits `[batch, classes]`)."""
        cos = self.cosine(embeddings)
        if labels is not None and self.training:
            self.update_scale(cos, labels)
        logits = self.class_logits(self.scale * cos)
        if labels is None:
            return None, logits
        return F.cross_entropy(logits, labels, reduction="none"), logits


class SubclusterAdaCos(AdaCos):
    """AdaCos over `K` centres per class; a class's probability is the sum over its centres."""

    def __init__(self, dim: int, n_classes: int, subclusters: int) -> None:
        if subclusters < 1:
            raise ValueError(f"beats.subclusters must be at least 1, got {subclusters}")
        super().__init__(dim, n_classes, per_class=subclusters)

    def class_logits(self, scaled: Tensor) -> Tensor:
        # Summing softmax probabilities per class = log-sum-exp of the class's centre logits.
        return torch.logsumexp(scaled.view(scaled.shape[0], self.n_classes, self.per_class), dim=2)


HEADS: dict[str, Callable[[int, int, int, float, float], CosineHead]] = {
    "adacos": lambda dim, n_classes, subclusters, margin, scale: AdaCos(dim, n_classes),
    "arcface": lambda dim, n_classes, subclusters, margin, scale: ArcFace(dim, n_classes, margin, scale),
    "subcluster_adacos": lambda dim, n_classes, subclusters, margin, scale: SubclusterAdaCos(
        dim, n_classes, subclusters
    ),
}


def get_head(
    name: str, dim: int, n_classes: int, subclusters: int = 1, margin: float = 0.5, scale: float = 30.0
) -> CosineHead:
    """A margin head by name (`beats.head`); unknown names list the valid ones.

    Args:
        dim: embedding width; n_classes: number of classes; subclusters: centres per class
            (subcluster_adacos); margin, scale: ArcFace's angular margin (radians) and scale.
    """
    if name not in HEADS:
        raise KeyError(f"unknown head {name!r}; valid: {', '.join(HEADS)}")
    return HEADS[name](dim, n_classes, subclusters, margin, scale)
