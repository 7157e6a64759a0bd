"""Load and save BEATs checkpoints in the official Microsoft format.

Reads: official checkpoints (`torch.save` of `{'cfg': dict, 'model': state_dict}` plus
`'label_dict'` for AudioSet fine-tuned ones), or nothing (`None` / "none": random weights).
Writes: checkpoints in the same format (`save_beats`), which `load_beats` reads back.

Official checkpoints cannot be downloaded automatically; the user fetches them by hand and
passes the path through the config key named in `CHECKPOINT_CONFIG_KEY`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.atomic import torch_save
from networks.beats.architecture import BEATsArchitecture, get_preset
from networks.beats.encoder import BEATs

logger = logging.getLogger(__name__)

# baseline.yaml has one section per system; the BEATs system reads its checkpoint from here.
CHECKPOINT_CONFIG_KEY = "beats.checkpoint"

OFFICIAL_CHECKPOINTS = (
    "BEATs_iter3.pt",
    "BEATs_iter3_plus_AS20K.pt",
    "BEATs_iter3_plus_AS2M.pt",
    "BEATs_iter3_finetuned_on_AS2M_cpt2.pt",
    "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt1.pt",
    "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt",
)

PathLike = str | os.PathLike


class BEATsCheckpointError(ValueError):
    """A checkpoint does not match the architecture its cfg describes."""


def _missing_checkpoint_message(path: Path) -> str:
    return (
        f"BEATs checkpoint not found: {path}. The official checkpoints "
        f"({', '.join(OFFICIAL_CHECKPOINTS)}, ...) cannot be downloaded automatically: download one "
        "by hand from the official BEATs release (github.com/microsoft/unilm, beats/README.md), "
        f"then pass its path via the config key `{CHECKPOINT_CONFIG_KEY}` "
        "(or 'none' to train from random weights)."
    )


def check_state_dict(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    what: str = "BEATs checkpoint does not match the architecture of its cfg",
) -> None:
    """Raise BEATsCheckpointError unless keys and shapes match `model` exactly.

    The message starts with `what` and lists every missing, unexpected and shape-mismatched key,
    so a wrong cfg or a checkpoint of another model is obvious at a glance.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = [what]
        for title, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if keys:
                parts.append(f"{title} ({len(keys)}):\n  " + "\n  ".join(keys))
        raise BEATsCheckpointError("\n".join(parts))


def _check_tied_bias(state_dict: Mapping[str, torch.Tensor]) -> None:
    """The per-layer copies of the tied position table must agree; only one tensor is loaded."""
    keys = sorted(k for k in state_dict if k.endswith("self_attn.relative_attention_bias.weight"))
    if not keys:
        return
    first = state_dict[keys[0]]
    differing = [k for k in keys[1:] if not torch.equal(state_dict[k], first)]
    if differing:
        raise BEATsCheckpointError(
            "the relative position table is shared by all layers, but these copies differ from "
            f"{keys[0]}: {', '.join(differing)}"
        )


def build_beats(cfg: BEATsArchitecture, state_dict: Mapping[str, torch.Tensor] | None = None) -> BEATs:
    """Build a model from `cfg`; with `state_dict`, check it strictly and load it."""
    model = BEATs(cfg)
    if state_dict is not None:
        check_state_dict(model, state_dict)
        _check_tied_bias(state_dict)
        model.load_state_dict(state_dict, strict=True)
    return model


def load_beats(
    path: PathLike | None,
    preset: str = "full",
    map_location: str | torch.device = "cpu",
) -> BEATs:
    """Load an official (or our own saved) BEATs checkpoint, or build a random model.

    Args:
        path: checkpoint file; None or "none" builds a randomly initialised model from `preset`
            and warns loudly that no pre-trained weights are used.
        preset: preset name used only when `path` is None/"none" ("full" or "tiny").
        map_location: where to load the tensors.

    Returns:
        The model in eval mode, with `model.cfg` (from the checkpoint) and `model.label_dict`
        (the checkpoint's `label_dict`, or None).

    Raises:
        FileNotFoundError: `path` does not exist (message names the official files).
        BEATsCheckpointError: keys or shapes do not match the checkpoint's own cfg.
    """
    if path is None or str(path).lower() == "none":
        logger.warning(
            "!!! BEATs: NO PRE-TRAINED WEIGHTS. Building a randomly initialised '%s' model because "
            "the checkpoint is '%s'. Results will be far below those of a pre-trained BEATs. Set `%s` "
            "to an official checkpoint (e.g. BEATs_iter3_plus_AS2M.pt) to use pre-training. !!!",
            preset,
            path,
            CHECKPOINT_CONFIG_KEY,
        )
        return build_beats(get_preset(preset)).eval()

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(_missing_checkpoint_message(path))
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(checkpoint, Mapping) or "cfg" not in checkpoint or "model" not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise BEATsCheckpointError(
            f"{path} is not a BEATs checkpoint: expected a dict with 'cfg' and 'model', found {found}"
        )
    model = build_beats(BEATsArchitecture.from_dict(checkpoint["cfg"]), checkpoint["model"])
    model.label_dict = checkpoint.get("label_dict")
    logger.info(
        "loaded BEATs checkpoint %s (%d layers, width %d)", path, model.cfg.encoder_layers, model.cfg.encoder_embed_dim
    )
    return model.eval()


def save_beats(model: BEATs, path: PathLike, label_dict: Mapping[Any, Any] | None = None) -> None:
    """Write `model` in the official checkpoint format, atomically (temporary file, then rename).

    Args:
        model: the model; its `cfg` and `state_dict` are stored.
        path: destination file.
        label_dict: class labels of the predictor (defaults to `model.label_dict` if present).
    """
    path = Path(path)
    if label_dict is None:
        label_dict = model.label_dict
    # Copy each tensor once so the tied position table stays one storage in the file.
    copies: dict[int, torch.Tensor] = {}
    state = {}
    for key, value in model.state_dict().items():
        if id(value) not in copies:
            copies[id(value)] = value.detach().cpu()
        state[key] = copies[id(value)]
    checkpoint: dict[str, Any] = {"cfg": model.cfg.to_dict(), "model": state}
    if label_dict is not None:
        checkpoint["label_dict"] = dict(label_dict)
    torch_save(checkpoint, path)
