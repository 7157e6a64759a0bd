"""The interface every anomaly-detection system implements, so the shell scripts, the submission
files and the metrics never need to know which system runs.

A system is trained on normal clips (`fit`), scores clips (`score`, higher = more anomalous) with
one of its named scorers, and round-trips through `save`/`load`. Learned state lives in
attributes ending in `_`; after `fit`, `train_clips_` and `train_scores_` hold the training clips
that were used and their scores per scorer, from which the decision thresholds are fitted.
"""
from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from datasets.manifest import Clip, mode_flag
from tools.config import Config, DataConfig, FeatureConfig, fingerprint

log = logging.getLogger(__name__)


class ModelFileError(RuntimeError):
    """A stored model that is missing or was written by another version; the message says how to retrain."""


def load_model_state(path: Path, format_version: int, ctx: "RunContext") -> dict:
    """A system's stored state (`torch.save` of a dict with a `format` entry), checked.

    Raises:
        ModelFileError: the file is missing, or its format is not `format_version`; the message
            names the training command that rebuilds it.
    """
    retrain = f"./01_train.sh {mode_flag(ctx.cfg.run.mode)} --system {ctx.cfg.run.system} --force"
    if not path.is_file():
        raise ModelFileError(f"no model file {path}: run {retrain}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != format_version:
        raise ModelFileError(f"{path} was written by another version of this system (format {state.get('format')}, "
                             f"expected {format_version}): retrain with {retrain}")
    return state


def training_stamp(config: dict, section: str, incidental: tuple[str, ...], clips: list[Clip], **extra) -> str:
    """Fingerprint of everything that shapes a training trajectory, to tell whether a checkpoint
    belongs to this run: the system's config `section` without its `incidental` keys (e.g. the
    number of epochs, so a rerun with more epochs continues), the audio input, the seed, the
    training clips, and `extra` (format versions, feature settings)."""
    return fingerprint({
        section: {k: v for k, v in config[section].items() if k not in incidental},
        "sample_rate": config["data"]["sample_rate"],
        "channel": config["data"]["channel"],
        "seed": config["run"]["seed"],
        "clips": [f"{c.machine}/{c.split}/{c.name}" for c in clips],
        **extra,
    })


def resume_state(checkpoint: Path, stamp: str, epochs: int, map_location: torch.device | str) -> dict | None:
    """The state in `checkpoint` if this training run (`stamp`, `epochs`) should continue from it.

    None, with a log line saying why, when there is no file, it cannot be read, it comes from
    another configuration or other clips, or it is past the `epochs` asked for.
    """
    if not checkpoint.is_file():
        return None
    try:
        state = torch.load(checkpoint, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError) as e:
        log.warning("checkpoint %s cannot be read (%s): training from the start", checkpoint, e)
        return None
    if state.get("fingerprint") != stamp:
        log.info("checkpoint %s is from another configuration or other clips: training from the start", checkpoint)
        return None
    if state["epoch"] > epochs:
        log.info("checkpoint %s is at epoch %d, beyond the %d asked for: training from the start",
                 checkpoint, state["epoch"], epochs)
        return None
    log.info("resuming from checkpoint %s at epoch %d/%d", checkpoint, state["epoch"], epochs)
    return state


def trained_feature_configs(trained: dict, ctx: "RunContext") -> tuple[DataConfig, FeatureConfig]:
    """The feature settings a model was trained with (`trained`: its saved configuration), with the
    data paths and workers of this run; a difference from the current configuration is logged."""
    data = dataclasses.replace(ctx.cfg.data, sample_rate=trained["data"]["sample_rate"],
                               channel=trained["data"]["channel"])
    feature = FeatureConfig(**trained["feature"])
    if feature != ctx.cfg.feature or data != ctx.cfg.data:
        log.warning("this model was trained with other feature settings than the current configuration; "
                    "scoring uses the model's own: %s", trained["feature"])
    return data, feature


@dataclass(frozen=True)
class RunContext:
    """What a system needs besides its configuration section."""

    cfg: Config
    device: torch.device
    expected_channels: int | None  # channel count the dataset promises; None accepts any


class System(ABC):
    """A trainable anomaly detector."""

    # "machine": one model per machine type; "dataset": one model for all machine types.
    scope: ClassVar[str] = "machine"
    # Names of the scoring methods; the first is the default.
    scorers: ClassVar[tuple[str, ...]]

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.train_clips_: list[Clip] = []
        self.train_scores_: dict[str, np.ndarray] = {}

    @abstractmethod
    def fit(self, clips: list[Clip], workdir: Path) -> "System":
        """Train on normal clips. `workdir` is the model folder: checkpoints for resuming go there.

        Sets `train_clips_` (the clips used; broken ones may have been skipped) and
        `train_scores_` (scorer -> [len(train_clips_)] scores, computed without letting a clip
        vote for itself where the scorer would otherwise see it, e.g. leave-one-out k-NN).
        """

    @abstractmethod
    def score(self, clips: list[Clip], scorer: str) -> np.ndarray:
        """[len(clips)] anomaly scores, higher = more anomalous."""

    @abstractmethod
    def save(self, model_dir: Path) -> None:
        """Store everything `load` needs in `model_dir`."""

    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path, ctx: RunContext) -> "System":
        """Restore a system stored by `save`."""
