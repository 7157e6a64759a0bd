"""The auxiliary-classification system: a compact CNN trained from scratch to recognise each normal
clip's machine type, section and attributes, scored by how far a clip's embedding lies from the
normal embeddings of its section, per domain. One model for all machine types of a dataset.

This module is the adapter between the `System` interface and the parts: it holds the settings
(`auxiliary`, `feature`), gets the inputs through the feature cache (log-mel spectrograms; the
whole clip's log spectrum, `datasets.feature_cache.Spectrum`), and calls the network (`model`),
the training loop (`training`) and the scorers (`scoring`).

Classes: `machine_section_attribute` (`machine_section_domain` where attributes are hidden,
`datasets.class_labels`). `auxiliary.ensemble: N` trains N networks with seeds seed .. seed+N-1,
each in `member_<i>/` of the model folder (`checkpoint.pt`, `training_log.csv`); their
standardised scores are averaged. `save` writes `auxiliary.pt`: the parameters, the classes,
and per member its seed, weights, history and fitted scorers (knn, mahala, softmax).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.atomic import torch_save
from core.config import AuxiliaryConfig, FeatureConfig
from core.runtime import distributed_rank_and_size, limit_threads
from datasets.audio import require_training_clips
from datasets.class_labels import ClassIndex
from datasets.feature_cache import Spectrum, cached_features, cached_log_mels
from datasets.manifest import Clip, DatasetError
from networks.auxiliary.model import AuxiliaryNet
from networks.auxiliary.scoring import SCORERS, MemberScorers, Section
from networks.auxiliary.training import (
    ClipInputs,
    amp_dtype,
    build_network,
    clip_inputs,
    embed,
    set_input_statistics,
    train_network,
)
from networks.system import AudioInput, ModelFileError, Runtime, System, load_model_state
from networks.training import training_stamp

log = logging.getLogger(__name__)

MODEL_FILE = "auxiliary.pt"
FORMAT_VERSION = 1
# Settings that do not change a network's training: a rerun with another value reuses the
# trained networks (the scorers are refitted; more ensemble members train only the new ones).
INCIDENTAL = ("threads", "knn_k", "mahala_ridge", "ensemble")


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
    section = "auxiliary"
    scope = "dataset"
    scorers = SCORERS
    test_time_keys = ("threads",)

    def __init__(self, settings: AuxiliaryConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.classes_: list[str] = []
        self.members_: list[Member] = []

    # ---- inputs ----------------------------------------------------------------------------

    def _inputs(self, clips: list[Clip], runtime: Runtime, training: bool) -> tuple[list[Clip], ClipInputs]:
        """The clips' inputs from the feature cache."""
        cfg, expected = self.settings, runtime.expected_channels
        what = "train" if training else "test"
        log_mels = spectra = None
        if "logmel" in cfg.branches:
            clips, log_mels = cached_log_mels(
                clips, runtime.data, self.feature, expected, allow_skip=training, desc=f"log-mel ({what})", mmap=True
            )
        if "spectrum" in cfg.branches:
            kept, spectra = cached_features(
                clips,
                runtime.data,
                Spectrum(cfg.spectrum_bins),
                expected,
                allow_skip=training,
                desc=f"spectrum ({what})",
            )
            if log_mels is not None and len(kept) < len(clips):  # both read the same files: rare, but kept aligned
                position = {c.path: i for i, c in enumerate(clips)}
                log_mels = [log_mels[position[c.path]] for c in kept]
            clips = kept
        if training:
            require_training_clips(clips)
        return clips, clip_inputs(log_mels, spectra)

    # ---- training --------------------------------------------------------------------------

    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> AuxiliarySystem:
        if distributed_rank_and_size()[1] > 1:
            raise RuntimeError("the auxiliary system trains in one process: run ./01_train.sh without --nproc-per-node")
        cfg, device = self.settings, runtime.device
        with limit_threads(cfg.threads):
            kept, inputs = self._inputs(clips, runtime, training=True)
            index = ClassIndex().fit(kept)
            targets = index.transform(kept)
            self.classes_ = index.classes_
            self._check_classes(kept, targets)
            class_sections: list[Section] = [("", "")] * len(self.classes_)
            for clip, target in zip(kept, targets):
                class_sections[target] = (clip.machine, clip.section)
            inputs.to(device)
            machines, sections, domains = [c.machine for c in kept], [c.section for c in kept], [c.domain for c in kept]
            self.members_ = []
            for i in range(cfg.ensemble):
                member_seed = self.seed + i
                if cfg.ensemble > 1:
                    log.info("ensemble member %d/%d (seed %d)", i + 1, cfg.ensemble, member_seed)
                network = self._network(member_seed)
                set_input_statistics(network, inputs)
                stamp = training_stamp(
                    self.get_params(), self.section, INCIDENTAL, kept, format=FORMAT_VERSION, member_seed=member_seed
                )
                history = train_network(
                    network, cfg, inputs, targets, device, Path(workdir) / f"member_{i}", stamp, member_seed
                )
                embeddings, logits = embed(
                    network, inputs, device, cfg.batch_size, amp_dtype(cfg.amp, device), "embeddings (train)"
                )
                scorers = MemberScorers(cfg.knn_k, cfg.mahala_ridge).fit(
                    embeddings, logits, machines, sections, domains, class_sections
                )
                self.members_.append(Member(member_seed, network.cpu(), scorers, history))
        self.train_clips_ = kept
        self._average_train_scores()
        return self

    def _network(self, seed: int) -> AuxiliaryNet:
        return build_network(self.settings, self.feature.n_mels, self.settings.spectrum_bins, len(self.classes_), seed)

    def _average_train_scores(self) -> None:
        self.train_scores_ = {
            name: np.mean([m.scorers.train_scores_[name] for m in self.members_], axis=0) for name in SCORERS
        }

    def _check_classes(self, clips: list[Clip], targets: np.ndarray) -> None:
        counts = np.bincount(targets, minlength=len(self.classes_))
        log.info(
            "%d training clips of %d machine type(s) in %d classes (machine_section_attribute)",
            len(clips),
            len({c.machine for c in clips}),
            len(self.classes_),
        )
        if len(self.classes_) < 2:
            raise DatasetError(
                f"the auxiliary classifier needs at least two classes (machine_section_attribute) but "
                f"the training clips form one ({self.classes_[0]}): train on more machine types or "
                f"sections, or use --system classical"
            )
        single = [self.classes_[i] for i in np.flatnonzero(counts == 1)]
        if single:
            log.warning(
                "%d class(es) have a single training clip (trained all the same): %s", len(single), ", ".join(single)
            )

    # ---- scores ----------------------------------------------------------------------------

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        if scorer not in self.scorers:
            raise KeyError(f"unknown scorer {scorer!r}; valid: {', '.join(self.scorers)}")
        trained = set(self.members_[0].scorers.class_sections_)
        missing = sorted({(c.machine, c.section) for c in clips} - trained)
        if missing:
            raise DatasetError(
                f"{', '.join(f'{m} section {s}' for m, s in missing)}: no training clips in this model (trained: "
                f"{', '.join(f'{m} section {s}' for m, s in sorted(trained))}); train with these sections first"
            )
        if not clips:
            return np.zeros(0)
        cfg, device = self.settings, runtime.device
        machines, sections = [c.machine for c in clips], [c.section for c in clips]
        with limit_threads(cfg.threads):
            _, inputs = self._inputs(clips, runtime, training=False)
            inputs.to(device)
            total = np.zeros(len(clips))
            for member in self.members_:
                embeddings, logits = embed(
                    member.network, inputs, device, cfg.batch_size, amp_dtype(cfg.amp, device), "embeddings (test)"
                )
                member.network.cpu()
                total += member.scorers.score(scorer, embeddings, logits, machines, sections)
        return total / len(self.members_)

    # ---- persistence -----------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        torch_save(
            {
                "format": FORMAT_VERSION,
                "params": self.get_params(),
                "classes": self.classes_,
                "members": [
                    {
                        "seed": m.seed,
                        "network": {k: v.cpu() for k, v in m.network.state_dict().items()},
                        "history": m.history,
                        "scorers": _tensors(m.scorers.state_dict()),
                    }
                    for m in self.members_
                ],
            },
            Path(model_dir) / MODEL_FILE,
        )

    @classmethod
    def load(cls, model_dir: Path) -> AuxiliarySystem:
        path = Path(model_dir) / MODEL_FILE
        state = load_model_state(path, FORMAT_VERSION)
        system = cls.from_params(state["params"], AuxiliaryConfig)
        system.classes_ = list(state["classes"])
        for member in state["members"]:
            network = system._network(member["seed"])
            try:
                network.load_state_dict(member["network"])
            except RuntimeError as e:
                raise ModelFileError(
                    f"{path}: the saved network does not match its parameters ({str(e).splitlines()[0]})"
                ) from None
            system.members_.append(
                Member(
                    member["seed"],
                    network.eval(),
                    MemberScorers.from_state_dict(member["scorers"]),
                    list(member["history"]),
                )
            )
        system._average_train_scores()
        return system
