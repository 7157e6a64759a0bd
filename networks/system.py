"""The interface every anomaly-detection system implements, so the shell scripts, the submission
files and the metrics never need to know which system runs.

A system is shaped like a scikit-learn estimator: `__init__` only stores its parameters (its own
typed configuration section, the feature settings, the audio input and the seed); `fit` learns from
normal clips; `score` returns one anomaly score per clip (higher = more anomalous) with one of its
named scorers; `save`/`load` round-trip the learned state (attributes ending in `_`) together with
the parameters, so that scoring can refuse a model trained with other settings
(`settings_differences`). Where and how it runs (device, feature cache, workers, the broken-file
policy) is a `Runtime` passed to `fit` and `score`, never stored with the model.
"""

from __future__ import annotations

import dataclasses
import pickle
import zipfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from core.config import Config, DataConfig, FeatureConfig
from datasets.manifest import Clip


class ModelFileError(RuntimeError):
    """A stored model that is missing, damaged or written by another version; the message names the file."""


@dataclass(frozen=True)
class AudioInput:
    """How a clip becomes the model's input signal: these shape a model, so they are its parameters."""

    sample_rate: int
    channel: int


@dataclass(frozen=True)
class Runtime:
    """Where and how a system runs: passed to `fit` and `score`, never saved with a model."""

    device: torch.device
    data: DataConfig  # feature cache, workers, on_bad_file; its sample rate and channel equal the model's
    expected_channels: int | None  # channel count the dataset promises; None accepts any


class System(ABC):
    """A trainable anomaly detector."""

    # Its configuration section in baseline.yaml, e.g. "autoencoder", and that section's dataclass.
    section: ClassVar[str]
    # "machine": one model per machine type; "dataset": one model for all machine types.
    scope: ClassVar[str] = "machine"
    # Names of the scoring methods; the first is the default.
    scorers: ClassVar[tuple[str, ...]]
    # Scorers that only some settings of its section provide: scorer -> (key, value), e.g. the
    # autoencoder's "elbo" needs `network: vae` (`networks.registry.resolve_scorer` checks it).
    scorer_needs: ClassVar[dict[str, tuple[str, object]]] = {}
    # Keys of its section that may differ between training and scoring (thread counts, a k-NN
    # `k` that the stored banks serve for any value, ...): everything else shapes the model.
    test_time_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        self.settings = settings
        self.feature = feature
        self.audio = audio
        self.seed = seed
        self.train_clips_: list[Clip] = []
        self.train_scores_: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, cfg: Config) -> System:
        """A fresh system with the parameters of `cfg`."""
        return cls(
            getattr(cfg, cls.section), cfg.feature, AudioInput(cfg.data.sample_rate, cfg.data.channel), cfg.run.seed
        )

    @classmethod
    def member_configs(cls, cfg: Config) -> list[Config]:
        """The configurations of the systems this one is built from (an ensemble's members), which
        `01_train.sh` trains first, each into its own model folder; none for a system of its own.

        Raises:
            ConfigError: the configuration names members that do not exist (listing the valid ones).
        """
        return []

    def get_params(self) -> dict:
        """The parameters as configuration sections (`{"feature": {...}, "data": {"sample_rate": ...}, ...}`)."""
        return {
            self.section: dataclasses.asdict(self.settings),
            "feature": dataclasses.asdict(self.feature),
            "data": dataclasses.asdict(self.audio),
            "run": {"seed": self.seed},
        }

    @classmethod
    def from_params(cls, params: dict, settings_class: type) -> System:
        """The system `get_params` described (as read back from a model file)."""
        return cls(
            settings_class(**params[cls.section]),
            FeatureConfig(**params["feature"]),
            AudioInput(**params["data"]),
            params["run"]["seed"],
        )

    def settings_differences(self, cfg: Config) -> list[str]:
        """`section.key (trained X, now Y)` for every parameter that `cfg` sets otherwise, except the
        test-time keys: a model scores only the inputs it was trained on."""
        current = cfg.to_dict()
        differences = []
        for section, values in self.get_params().items():
            for key, trained in values.items():
                if section == self.section and key in self.test_time_keys:
                    continue
                now = current[section][key]
                if now != trained:
                    differences.append(f"{section}.{key} (trained {trained!r}, now {now!r})")
        return differences

    def with_test_time_settings(self, cfg: Config) -> System:
        """This system with the test-time keys of `cfg` (e.g. another k for the k-NN scorer)."""
        current = getattr(cfg, self.section)
        self.settings = dataclasses.replace(self.settings, **{k: getattr(current, k) for k in self.test_time_keys})
        return self

    @abstractmethod
    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> System:
        """Train on normal clips. `workdir` is the model folder: checkpoints for resuming go there.

        Sets `train_clips_` (the clips used; broken ones may have been skipped) and
        `train_scores_` (scorer -> [len(train_clips_)] scores, computed without letting a clip
        vote for itself where the scorer would otherwise see it, e.g. leave-one-out k-NN).
        """

    @abstractmethod
    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        """[len(clips)] anomaly scores, higher = more anomalous."""

    @abstractmethod
    def save(self, model_dir: Path) -> None:
        """Store everything `load` needs in `model_dir`, the parameters included."""

    @classmethod
    @abstractmethod
    def load(cls, model_dir: Path) -> System:
        """Restore a system stored by `save`.

        Raises:
            ModelFileError: a file is missing, damaged or from another version.
        """


def load_model_state(path: Path, format_version: int) -> dict:
    """A system's stored state (`torch.save` of a dict with a `format` entry), checked.

    Raises:
        ModelFileError: the file is missing, cannot be read (truncated, not a model file), or its
            format is not `format_version`; the message names the file and the reason.
    """
    if not path.is_file():
        raise ModelFileError(f"model file {path} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"model file {path} is damaged or incomplete ({type(e).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != format_version:
        found = state.get("format") if isinstance(state, dict) else None
        raise ModelFileError(
            f"model file {path} was written by another version of this system (format {found}, "
            f"expected {format_version})"
        )
    return state
