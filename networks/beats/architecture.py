"""Typed BEATs configuration, read from and written to the `cfg` dict of official checkpoints.

Reads: the plain `cfg` dict stored in a BEATs checkpoint (or a preset name).
Writes: `BEATsArchitecture` instances, and plain dicts in the official format (`to_dict`).

The defaults are those of the official `BEATsArchitecture`; an official checkpoint overrides them with
its own `cfg` entries. Keys this class does not know are kept in `extras` and written back
unchanged, because official checkpoints may carry entries the encoder does not use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass
class BEATsArchitecture:
    """Architecture and regularisation settings of a BEATs model (official field names).

    Fields not used by the forward pass in eval mode: all dropouts, `encoder_layerdrop` and
    `layer_wise_gradient_decay_ratio` (a gradient scale; the forward pass is unchanged).
    """

    input_patch_size: int = -1
    embed_dim: int = 512
    conv_bias: bool = False

    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"

    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False

    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0

    conv_pos: int = 128
    conv_pos_groups: int = 16

    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False

    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527

    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any]) -> BEATsArchitecture:
        """Build a config from an official `cfg` dict: known keys override defaults, others go to `extras`."""
        known = {f.name for f in dataclasses.fields(cls)} - {"extras"}
        values = {k: v for k, v in cfg.items() if k in known}
        extras = {k: v for k, v in cfg.items() if k not in known}
        return cls(**values, extras=extras)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the official checkpoint format (all fields, then the extras)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extras"}
        out.update(self.extras)
        return out

    def replace(self, **changes: Any) -> BEATsArchitecture:
        """Copy with some fields changed (e.g. `finetuned_model=True, predictor_class=10`)."""
        return dataclasses.replace(self, extras=dict(self.extras), **changes)

    @property
    def head_dim(self) -> int:
        return self.encoder_embed_dim // self.encoder_attention_heads

    def validate(self) -> None:
        """Raise ValueError for settings this implementation cannot build."""
        problems = []
        if self.input_patch_size <= 0:
            problems.append(f"input_patch_size must be positive (got {self.input_patch_size})")
        elif 128 % self.input_patch_size:
            problems.append(f"input_patch_size {self.input_patch_size} does not divide the 128 mel bins")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            problems.append(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            problems.append(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by conv_pos_groups {self.conv_pos_groups}"
            )
        if self.activation_fn != "gelu":
            problems.append(f"activation_fn {self.activation_fn!r} is not supported (only 'gelu')")
        if self.layer_norm_first:
            problems.append("layer_norm_first=True (pre-LN) is not supported; official BEATs models are post-LN")
        if self.gru_rel_pos and not self.relative_position_embedding:
            problems.append("gru_rel_pos=True needs relative_position_embedding=True")
        if problems:
            raise ValueError("unsupported BEATs config: " + "; ".join(problems))


# The cfg of BEATs_iter3_plus_AS2M.pt as documented in shared/reference/beats/README.md.
_FULL = {
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "activation_fn": "gelu",
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "encoder_layerdrop": 0.05,
    "dropout_input": 0.0,
    "layer_norm_first": False,
    "conv_bias": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "deep_norm": True,
    "input_patch_size": 16,
    "layer_wise_gradient_decay_ratio": 0.6,
    "embed_dim": 512,
    "finetuned_model": False,
}

# Same flags, small sizes (the golden tiny checkpoints): cheap enough for CPU tests and smoke runs.
_TINY = {
    **_FULL,
    "encoder_layers": 2,
    "encoder_embed_dim": 64,
    "encoder_ffn_embed_dim": 128,
    "encoder_attention_heads": 4,
    "embed_dim": 48,
}

# Read-only views: a caller cannot change a preset for everyone else by accident.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {"full": MappingProxyType(_FULL), "tiny": MappingProxyType(_TINY)}
)


def get_preset(name: str) -> BEATsArchitecture:
    """A fresh config for a named preset (`full` or `tiny`); unknown names list the valid ones."""
    try:
        cfg = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown BEATs preset {name!r}; valid presets: {', '.join(sorted(PRESETS))}") from None
    return BEATsArchitecture.from_dict(cfg)
