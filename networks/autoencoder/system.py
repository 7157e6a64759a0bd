"""The autoencoder systems: one network per machine type, the official dense one by default
(`autoencoder.network`: dense | conv | lstm | vae, `networks.autoencoder.networks`).

Reads clips through the feature cache (log-mel spectrograms, [frames, n_mels] per clip) and
builds 5-frame context vectors per batch (`networks.autoencoder.frames.FrameBank`). Writes, in the
model folder, `checkpoint.pt` during training (`networks.autoencoder.training`) and, through `save`,
`autoencoder.pt` (parameters, network, residual covariances and loss history).

After the last epoch, an explicit step passes every training clip through the network once and
fits the per-domain residual covariances of the Selective Mahalanobis scorer (`networks.mahalanobis`).

Scorers (higher = more anomalous):
- mse: the mean squared reconstruction error over a clip's context vectors (Simple Autoencoder mode);
- mahala: min over source/target of the squared Mahalanobis norm of the clip's mean residual
  (Selective Mahalanobis mode);
- elbo (vae only): the clip's mean negative ELBO per input value, the training loss evaluated at
  the posterior mean: mse plus `vae_beta` times the KL divergence per input value.
For the VAE, mse and mahala use the reconstruction from the posterior mean, as for the others.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch

from core.atomic import torch_save
from core.config import AutoencoderConfig, FeatureConfig
from core.runtime import distributed_rank_and_size, limit_threads
from datasets.audio import require_training_clips, usable_indices
from datasets.feature_cache import cached_log_mels
from datasets.manifest import Clip
from networks.autoencoder.frames import FrameBank, too_short
from networks.autoencoder.model import ContextAutoencoder
from networks.autoencoder.networks import build_network
from networks.autoencoder.training import residual_pass, train
from networks.mahalanobis import SelectiveMahalanobis
from networks.system import AudioInput, Runtime, System, load_model_state
from networks.training import training_stamp

log = logging.getLogger(__name__)

MODEL_FILE = "autoencoder.pt"
FORMAT_VERSION = 4  # 3: parameters stored with the network; 4: autoencoder.network and its keys


class AutoencoderSystem(System):
    section = "autoencoder"
    scope = "machine"
    scorers = ("mse", "mahala", "elbo")
    scorer_needs = {"elbo": ("network", "vae")}
    test_time_keys = ("threads", "amp")

    def __init__(self, settings: AutoencoderConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.model_: ContextAutoencoder | None = None
        self.mahalanobis_: SelectiveMahalanobis | None = None
        self.history_: list[dict] = []  # per epoch: epoch, train_loss, val_loss, seconds

    def _frame_bank(self, clips: list[Clip], runtime: Runtime, training: bool) -> tuple[list[Clip], FrameBank]:
        kept, log_mels = cached_log_mels(
            clips,
            runtime.data,
            self.feature,
            runtime.expected_channels,
            allow_skip=training,
            desc="log-mel (train)" if training else "log-mel (test)",
            mmap=True,
        )
        context = self.settings.frames
        short = {
            i: f"{kept[i].path}: {len(log_mels[i])} frames, shorter than the {context}-frame context of "
            f"autoencoder.frames"
            for i in too_short(log_mels, context)
        }
        keep = usable_indices(len(kept), short, runtime.data.on_bad_file, allow_skip=training)
        kept, log_mels = [kept[i] for i in keep], [log_mels[i] for i in keep]
        require_training_clips(kept)
        bank = FrameBank(log_mels, context)  # empties log_mels
        if runtime.device.type != "cpu":
            bank.to(runtime.device)
        return kept, bank

    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> AutoencoderSystem:
        if distributed_rank_and_size()[1] > 1:
            # Data-parallel copies would normalise half batches: not the official network's training.
            raise RuntimeError("the autoencoder trains in one process: run ./01_train.sh without --nproc-per-node")
        self.train_clips_, bank = self._frame_bank(clips, runtime, training=True)
        self.model_ = build_network(bank.vector_dim, self.settings).to(runtime.device)
        # Not the number of epochs (a rerun with more epochs continues where the last one stopped),
        # the thread count, or the Mahalanobis ridge (a changed ridge refits the covariances).
        stamp = training_stamp(
            self.get_params(),
            self.section,
            ("epochs", "threads", "covariance_ridge"),
            self.train_clips_,
            format=FORMAT_VERSION,
        )
        self.history_ = train(
            self.model_,
            bank,
            [_domain(c) for c in self.train_clips_],
            self.settings,
            self.seed,
            runtime.device,
            Path(workdir),
            stamp,
        )
        self.fit_scorers(bank, self.train_clips_, runtime.device)
        return self

    def fit_scorers(self, bank: FrameBank, clips: list[Clip], device: torch.device) -> AutoencoderSystem:
        """The explicit step after training: one pass of every training clip through the network
        fits the per-domain residual covariances and gives the training clips' scores.

        Args:
            bank: the clips' frames, in the order of `clips`.
            clips: the training clips (their domain picks the covariance they contribute to).
        """
        began = time.perf_counter()
        with limit_threads(self.settings.threads, torch_too=False):
            mean_residuals, mse, moments, divergence = residual_pass(
                self.model_, bank, device, [_domain(c) for c in clips]
            )
        self.mahalanobis_ = SelectiveMahalanobis(self.settings.covariance_ridge).fit(moments)
        self.train_scores_ = {"mse": mse, "mahala": self.mahalanobis_.score(mean_residuals).numpy()}
        if divergence is not None:
            self.train_scores_["elbo"] = self._elbo(mse, divergence)
        log.info(
            "residual covariances fitted on %s context vectors (%.1f s)",
            ", ".join(f"{d} {m.n_}" for d, m in sorted(moments.items())),
            time.perf_counter() - began,
        )
        return self

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        needed = self.scorer_needs.get(scorer)
        if needed and getattr(self.settings, needed[0]) != needed[1]:
            raise KeyError(
                f"scorer {scorer!r} needs autoencoder.{needed[0]} {needed[1]}, this model is {self.settings.network}"
            )
        _, bank = self._frame_bank(clips, runtime, training=False)
        mean_residuals, mse, _, divergence = residual_pass(self.model_.to(runtime.device), bank, runtime.device)
        scores = {
            "mse": lambda: mse,
            "mahala": lambda: self.mahalanobis_.score(mean_residuals).numpy(),
            "elbo": lambda: self._elbo(mse, divergence),
        }
        return scores[scorer]()

    def _elbo(self, mse: np.ndarray, divergence: np.ndarray) -> np.ndarray:
        """[clips] negative ELBO per input value (the VAE's loss at the posterior mean)."""
        return mse + self.settings.vae_beta * divergence / self.model_.input_dim

    def save(self, model_dir: Path) -> None:
        torch_save(
            {
                "format": FORMAT_VERSION,
                "params": self.get_params(),
                "input_dim": self.model_.input_dim,
                "model": {k: v.cpu() for k, v in self.model_.state_dict().items()},
                "mahalanobis": self.mahalanobis_.state_dict(),
                "history": self.history_,
            },
            Path(model_dir) / MODEL_FILE,
        )

    @classmethod
    def load(cls, model_dir: Path) -> AutoencoderSystem:
        state = load_model_state(Path(model_dir) / MODEL_FILE, FORMAT_VERSION)
        system = cls.from_params(state["params"], AutoencoderConfig)
        system.model_ = build_network(state["input_dim"], system.settings)
        system.model_.load_state_dict(state["model"])
        system.model_.eval()
        system.mahalanobis_ = SelectiveMahalanobis.from_state_dict(state["mahalanobis"])
        system.history_ = list(state["history"])
        return system


def _domain(clip: Clip) -> str:
    """Clips without a domain (2020 data) belong to the source domain."""
    return clip.domain or "source"
