"""What every neural trainer shares to resume: a stamp of the training run and the checkpoint to continue from.

Reads `checkpoint.pt` files written by the trainers (a dict with `fingerprint`, `epoch` and the
states they need); writes nothing.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import torch

from core.config import fingerprint
from datasets.manifest import Clip

log = logging.getLogger(__name__)


def training_stamp(params: dict, section: str, incidental: tuple[str, ...], clips: list[Clip], **extra) -> str:
    """Fingerprint of everything that shapes a training trajectory, to tell whether a checkpoint
    belongs to this run: a system's parameters (`System.get_params()`) without the `incidental`
    keys of its `section` (e.g. the number of epochs, so a rerun with more epochs continues), the
    training clips, and `extra` (format versions)."""
    return fingerprint(
        {
            **params,
            section: {k: v for k, v in params[section].items() if k not in incidental},
            "clips": [f"{c.machine}/{c.split}/{c.name}" for c in clips],
            **extra,
        }
    )


def resume_state(checkpoint: Path, stamp: str, epochs: int, map_location: torch.device | str) -> dict | None:
    """The state in `checkpoint` if this training run (`stamp`, `epochs`) should continue from it.

    None, with a log line saying why, when there is no file, it cannot be read, it comes from
    another configuration or other clips, or it is past the `epochs` asked for.
    """
    if not checkpoint.is_file():
        return None
    try:
        state = torch.load(checkpoint, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        log.warning("checkpoint %s cannot be read (%s): training from the start", checkpoint, e)
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != stamp:
        log.info("checkpoint %s is from another configuration or other clips: training from the start", checkpoint)
        return None
    if state["epoch"] > epochs:
        log.info(
            "checkpoint %s is at epoch %d, beyond the %d asked for: training from the start",
            checkpoint,
            state["epoch"],
            epochs,
        )
        return None
    log.info("resuming from checkpoint %s at epoch %d/%d", checkpoint, state["epoch"], epochs)
    return state
