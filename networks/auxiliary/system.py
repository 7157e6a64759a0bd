"""The auxiliary-classification system: a compact CNN trained from scratch to recognise each normal
clip's machine type, section and attributes, scored by how far a clip's embedding lies from the
normal embeddings of its section, per domain. One model for all machine types of a dataset.

This module is the adapter between the `System` interface and the parts: it reads the settings
(`auxiliary`, `feature`, `data`), gets the inputs through the feature cache (log-mel
spectrograms; the whole clip's log spectrum, `datasets.feature_cache.Spectrum`), and calls the
network (`model`), the training loop (`training`) and the scorers (`scoring`).

Classes: `machine_section_attribute` (`machine_section_domain` where attributes are hidden,
`datasets.class_labels`). `auxiliary.ensemble: N` trains N networks with seeds seed .. seed+N-1,
each in `member_<i>/` of the model folder (`checkpoint.pt`, `training_log.csv`); their
standardised scores are averaged. `save` writes `auxiliary.pt`: the configuration, the classes,
and per member its seed, weights, history and fitted scorers (knn, mahala, softmax).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from datasets.audio import require_training_clips
from datasets.class_labels import ClassIndex
from datasets.feature_cache import Spectrum, cached_features, cached_log_mels
from datasets.frames import FrameBank
from datasets.manifest import Clip, DatasetError
from networks.auxiliary.model import AuxiliaryNet, check_branches
from networks.auxiliary.scoring import SCORERS, MemberScorers, Section
from networks.auxiliary.training import ClipInputs, amp_dtype, build_network, embed, set_input_statistics, train_network
from networks.margin_heads import HEADS
from networks.pooling import get_pooling
from networks.system import (
    ModelFileError,
    RunContext,
    System,
    load_model_state,
    trained_feature_configs,
    training_stamp,
)
from tools.atomic import torch_save
from tools.config import AuxiliaryConfig, ConfigError
from tools.runtime import distributed_rank_and_size, limit_threads

log = logging.getLogger(__name__)

MODEL_FILE = "auxiliary.pt"
FORMAT_VERSION = 1
# Settings that do not change a network's training: a rerun with another value reuses the
# trained networks (the scorers are refitted; more ensemble members train only the new ones).
INCIDENTAL = ("threads", "knn_k", "mahala_ridge", "ensemble")


def check_config(cfg: AuxiliaryConfig) -> None:
    """Fail fast on invalid settings with a one-line ConfigError naming the key and the valid choices."""
    try:
        check_branches(cfg.branches)
        get_pooling(cfg.pooling, 8, 8)
    except (KeyError, ValueError) as e:
        raise ConfigError(str(e).strip('"').replace("unknown pooling", "unknown auxiliary.pooling")) from None
    if cfg.head not in HEADS:
        raise ConfigError(f"unknown auxiliary.head {cfg.head!r}; valid: {', '.join(HEADS)}")
    for key in ("spectrum_bins", "blocks", "attention_dim", "embedding_dim", "subclusters", "epochs", "ensemble", "knn_k"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"auxiliary.{key} must be at least 1, got {getattr(cfg, key)}")
    if cfg.batch_size < 2:
        raise ConfigError(f"auxiliary.batch_size must be at least 2 (batch normalisation), got {cfg.batch_size}")
    if not cfg.channels or min(cfg.channels) < 1:
        raise ConfigError(f"auxiliary.channels must list positive widths, got {cfg.channels}")
    if cfg.mixup_alpha < 0 or not 0 <= cfg.mask_fraction < 1 or cfg.train_frames < 0:
        raise ConfigError(f"auxiliary.mixup_alpha must be >= 0, mask_fraction in [0, 1) and train_frames >= 0; got "
                          f"{cfg.mixup_alpha}, {cfg.mask_fraction}, {cfg.train_frames}")
    if cfg.mahala_ridge <= 0 or cfg.lr <= 0:
        raise ConfigError(f"auxiliary.mahala_ridge and auxiliary.lr must be positive, got {cfg.mahala_ridge}, {cfg.lr}")


@dataclass
class Member:
    """One trained network of the ensemble and its fitted scorers."""

    seed: int
    network: AuxiliaryNet
    scorers: MemberScorers
    history: list[dict]


def _tensors(value):
    """numpy arrays inside nested dicts and lists -> CPU tensors (what `torch.load(weights_only=True)` reads)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value))
    if isinstance(value, dict):
        return {k: _tensors(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensors(v) for v in value]
    return value


class AuxiliarySystem(System):
    scope = "dataset"
    scorers = SCORERS

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.config_: dict = ctx.cfg.to_dict()  # the configuration the model is (or will be) trained with
        self.classes_: list[str] = []
        self.input_sizes_: dict[str, int] = {}  # n_mels, bins
        self.members_: list[Member] = []

    @property
    def settings(self) -> AuxiliaryConfig:
        return AuxiliaryConfig(**self.config_["auxiliary"])

    # ---- inputs ----------------------------------------------------------------------------

    def _inputs(self, clips: list[Clip], training: bool) -> tuple[list[Clip], ClipInputs]:
        """The clips' inputs from the feature cache (with the model's own feature settings)."""
        cfg, expected = self.settings, self.ctx.expected_channels
        data_cfg, feature_cfg = trained_feature_configs(self.config_, self.ctx)
        what = "train" if training else "test"
        log_mels = spectra = None
        if "logmel" in cfg.branches:
            clips, log_mels = cached_log_mels(clips, data_cfg, feature_cfg, expected, allow_skip=training,
                                              desc=f"log-mel ({what})", mmap=True)
        if "spectrum" in cfg.branches:
            kept, spectra = cached_features(clips, data_cfg, Spectrum(cfg.spectrum_bins), expected,
                                            allow_skip=training, desc=f"spectrum ({what})")
            if log_mels is not None and len(kept) < len(clips):  # both read the same files: rare, but kept aligned
                position = {c.path: i for i, c in enumerate(clips)}
                log_mels = [log_mels[position[c.path]] for c in kept]
            clips = kept
        if training:
            require_training_clips(clips)
        return clips, ClipInputs(FrameBank(log_mels, 1) if log_mels is not None else None,
                                 torch.from_numpy(np.stack(spectra)) if spectra is not None else None)

    # ---- training --------------------------------------------------------------------------

    def fit(self, clips: list[Clip], workdir: Path) -> AuxiliarySystem:
        if distributed_rank_and_size()[1] > 1:
            raise RuntimeError("the auxiliary system trains in one process: run ./01_train.sh without --nproc-per-node")
        self.config_ = self.ctx.cfg.to_dict()
        cfg, device, seed = self.settings, self.ctx.device, self.ctx.cfg.run.seed
        check_config(cfg)
        with limit_threads(cfg.threads):
            kept, inputs = self._inputs(clips, training=True)
            index = ClassIndex().fit(kept)
            targets = index.transform(kept)
            self.classes_ = index.classes_
            self._check_classes(kept, targets)
            class_sections: list[Section] = [("", "")] * len(self.classes_)
            for clip, target in zip(kept, targets):
                class_sections[target] = (clip.machine, clip.section)
            self.input_sizes_ = {"n_mels": self.config_["feature"]["n_mels"], "bins": cfg.spectrum_bins}
            inputs.to(device)
            machines, sections, domains = [c.machine for c in kept], [c.section for c in kept], [c.domain for c in kept]
            self.members_ = []
            for i in range(cfg.ensemble):
                member_seed = seed + i
                if cfg.ensemble > 1:
                    log.info("ensemble member %d/%d (seed %d)", i + 1, cfg.ensemble, member_seed)
                network = build_network(cfg, **self.input_sizes_, n_classes=len(self.classes_), seed=member_seed)
                set_input_statistics(network, inputs)
                stamp = training_stamp(self.config_, "auxiliary", INCIDENTAL, kept, format=FORMAT_VERSION,
                                       feature=self.config_["feature"], member_seed=member_seed)
                history = train_network(network, cfg, inputs, targets, device, Path(workdir) / f"member_{i}", stamp,
                                        member_seed)
                embeddings, logits = embed(network, inputs, device, cfg.batch_size, amp_dtype(cfg.amp, device),
                                           "embeddings (train)")
                scorers = MemberScorers(cfg.knn_k, cfg.mahala_ridge).fit(embeddings, logits, machines, sections,
                                                                          domains, class_sections)
                self.members_.append(Member(member_seed, network.cpu(), scorers, history))
        self.train_clips_ = kept
        self.train_scores_ = {name: np.mean([m.scorers.train_scores_[name] for m in self.members_], axis=0)
                              for name in SCORERS}
        return self

    def _check_classes(self, clips: list[Clip], targets: np.ndarray) -> None:
        counts = np.bincount(targets, minlength=len(self.classes_))
        log.info("%d training clips of %d machine type(s) in %d classes (machine_section_attribute)", len(clips),
                 len({c.machine for c in clips}), len(self.classes_))
        if len(self.classes_) < 2:
            raise DatasetError(f"the auxiliary classifier needs at least two classes (machine_section_attribute) but "
                               f"the training clips form one ({self.classes_[0]}): train on more machine types or "
                               f"sections, or use --system classical")
        single = [self.classes_[i] for i in np.flatnonzero(counts == 1)]
        if single:
            log.warning("%d class(es) have a single training clip (trained all the same): %s", len(single),
                        ", ".join(single))

    # ---- scores ----------------------------------------------------------------------------

    def score(self, clips: list[Clip], scorer: str) -> np.ndarray:
        if scorer not in self.scorers:
            raise KeyError(f"unknown scorer {scorer!r}; valid: {', '.join(self.scorers)}")
        trained = set(self.members_[0].scorers.class_sections_)
        missing = sorted({(c.machine, c.section) for c in clips} - trained)
        if missing:
            raise DatasetError(
                f"{', '.join(f'{m} section {s}' for m, s in missing)}: no training clips in this model (trained: "
                f"{', '.join(f'{m} section {s}' for m, s in sorted(trained))}); train with these sections first")
        if not clips:
            return np.zeros(0)
        cfg, device = self.settings, self.ctx.device
        machines, sections = [c.machine for c in clips], [c.section for c in clips]
        with limit_threads(cfg.threads):
            _, inputs = self._inputs(clips, training=False)
            inputs.to(device)
            total = np.zeros(len(clips))
            for member in self.members_:
                embeddings, logits = embed(member.network, inputs, device, cfg.batch_size, amp_dtype(cfg.amp, device),
                                           "embeddings (test)")
                member.network.cpu()
                total += member.scorers.score(scorer, embeddings, logits, machines, sections)
        return total / len(self.members_)

    # ---- persistence -----------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        torch_save({
            "format": FORMAT_VERSION,
            "config": self.config_,
            "classes": self.classes_,
            "input_sizes": self.input_sizes_,
            "members": [{"seed": m.seed, "network": {k: v.cpu() for k, v in m.network.state_dict().items()},
                         "history": m.history, "scorers": _tensors(m.scorers.state_dict())} for m in self.members_],
        }, Path(model_dir) / MODEL_FILE)

    @classmethod
    def load(cls, model_dir: Path, ctx: RunContext) -> AuxiliarySystem:
        path = Path(model_dir) / MODEL_FILE
        state = load_model_state(path, FORMAT_VERSION, ctx)
        system = cls(ctx)
        system.config_ = state["config"]
        system.classes_ = list(state["classes"])
        system.input_sizes_ = dict(state["input_sizes"])
        cfg = system.settings
        for member in state["members"]:
            network = build_network(cfg, **system.input_sizes_, n_classes=len(system.classes_), seed=member["seed"])
            try:
                network.load_state_dict(member["network"])
            except RuntimeError as e:
                raise ModelFileError(f"{path}: the saved network does not match its configuration "
                                     f"({str(e).splitlines()[0]}); retrain with ./01_train.sh --force") from None
            system.members_.append(Member(member["seed"], network.eval(), MemberScorers.from_state_dict(member["scorers"]),
                                          list(member["history"])))
        system.train_scores_ = {name: np.mean([m.scorers.train_scores_[name] for m in system.members_], axis=0)
                                for name in SCORERS}
        return system
