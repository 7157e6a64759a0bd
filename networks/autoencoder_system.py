"""The official autoencoder baseline as a System: one dense autoencoder per machine type.

Reads clips through the feature cache (log-mel spectrograms, [frames, n_mels] per clip) and
builds 5-frame context vectors per batch (`datasets.frames.FrameBank`). Writes, in the model
folder: `checkpoint.pt` after every epoch (network, optimiser, loss history and a fingerprint of
everything that shapes training), from which a rerun after a crash or kill resumes; and through
`save`, `autoencoder.pt` (network, residual covariances, loss history and the resolved config).

Training: MSE reconstruction loss, Adam, shuffled batches of context vectors; a stratified
fraction of the training clips is held out and only reports a validation loss. After the last
epoch, an explicit step passes every training clip through the network once and fits the
per-domain residual covariances of the Selective Mahalanobis scorer (`networks.mahalanobis`).

Scorers (higher = more anomalous):
- mse: the mean squared reconstruction error over a clip's context vectors (Simple Autoencoder mode);
- mahala: min over source/target of the squared Mahalanobis norm of the clip's mean residual
  (Selective Mahalanobis mode).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from datasets.audio import require_training_clips, usable_indices
from datasets.feature_cache import cached_log_mels
from datasets.frames import FrameBank, too_short
from datasets.manifest import Clip
from networks.autoencoder import DenseAutoencoder
from networks.mahalanobis import ResidualMoments, SelectiveMahalanobis
from networks.system import (RunContext, System, load_model_state, resume_state, trained_feature_configs,
                             training_stamp)
from tools.atomic import torch_save
from tools.config import AutoencoderConfig, DataConfig, FeatureConfig
from tools.runtime import autocast, distributed_rank_and_size, limit_threads

log = logging.getLogger(__name__)

MODEL_FILE = "autoencoder.pt"
CHECKPOINT_FILE = "checkpoint.pt"
FORMAT_VERSION = 2
EVAL_VECTORS = 4096  # context vectors per forward pass outside training (memory, not results)


class AutoencoderSystem(System):
    scope = "machine"
    scorers = ("mse", "mahala")

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.config_: dict = ctx.cfg.to_dict()  # the configuration the model is (or will be) trained with
        self.model_: DenseAutoencoder | None = None
        self.mahalanobis_: SelectiveMahalanobis | None = None
        self.history_: list[dict] = []  # per epoch: epoch, train_loss, val_loss, seconds

    # ---- features -------------------------------------------------------------------------

    def _feature_configs(self) -> tuple[DataConfig, FeatureConfig]:
        """The feature settings the model was trained with; data paths and workers from this run."""
        return trained_feature_configs(self.config_, self.ctx)

    def _frame_bank(self, clips: list[Clip], training: bool) -> tuple[list[Clip], FrameBank]:
        data_cfg, feature_cfg = self._feature_configs()
        kept, log_mels = cached_log_mels(clips, data_cfg, feature_cfg, self.ctx.expected_channels, allow_skip=training,
                                         desc="log-mel (train)" if training else "log-mel (test)", mmap=True)
        context = self.config_["autoencoder"]["frames"]
        short = {i: f"{kept[i].path}: {len(log_mels[i])} frames, shorter than the {context}-frame context of "
                    f"autoencoder.frames" for i in too_short(log_mels, context)}
        keep = usable_indices(len(kept), short, data_cfg.on_bad_file, allow_skip=training)
        kept, log_mels = [kept[i] for i in keep], [log_mels[i] for i in keep]
        require_training_clips(kept)
        bank = FrameBank(log_mels, context)  # empties log_mels
        if self.ctx.device.type != "cpu":
            bank.to(self.ctx.device)
        return kept, bank

    # ---- training -------------------------------------------------------------------------

    def fit(self, clips: list[Clip], workdir: Path) -> "AutoencoderSystem":
        if distributed_rank_and_size()[1] > 1:
            # Data-parallel copies would normalise half batches: not the official network's training.
            raise RuntimeError("the autoencoder trains in one process: run ./01_train.sh without --nproc-per-node")
        cfg = self.ctx.cfg
        self.config_ = cfg.to_dict()
        self.train_clips_, bank = self._frame_bank(clips, training=True)
        self.model_ = DenseAutoencoder.from_config(bank.vector_dim, cfg.autoencoder).to(self.ctx.device)
        self._train(bank, Path(workdir))
        self.fit_scorers(bank, self.train_clips_)
        return self

    def _resume_stamp(self, clips: list[Clip]) -> str:
        """Everything that shapes the network's training trajectory. Not the number of epochs (a
        rerun with more epochs continues where the last one stopped), the thread count, or the
        Mahalanobis ridge (a changed ridge refits the covariances on the trained network)."""
        return training_stamp(self.config_, "autoencoder", ("epochs", "threads", "covariance_ridge"), clips,
                              format=FORMAT_VERSION, feature=self.config_["feature"])

    def _train(self, bank: FrameBank, workdir: Path) -> None:
        cfg = self.ctx.cfg.autoencoder
        seed = self.ctx.cfg.run.seed
        device = self.ctx.device
        use_amp = cfg.amp and device.type == "cuda"
        domains = [_domain(c) for c in self.train_clips_]
        train_idx, val_idx = split_clips(domains, cfg.validation_split, seed)
        train_starts, _ = bank.vector_starts(train_idx)
        val_starts, _ = bank.vector_starts(val_idx)
        log.info("training on %d clips (%d context vectors), validating on %d clips (%d vectors), device %s%s",
                 len(train_idx), len(train_starts), len(val_idx), len(val_starts), device, ", float16 AMP" if use_amp else "")
        model = self.model_
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, fused=True)
        scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
        checkpoint = workdir / CHECKPOINT_FILE
        stamp = self._resume_stamp(self.train_clips_)
        start = self._resume(checkpoint, stamp, cfg.epochs, optimizer, scaler)
        for epoch in range(start + 1, cfg.epochs + 1):
            began = time.perf_counter()
            # Only the training steps limit PyTorch: their operations are small (batches of 256
            # vectors), so every one waits for its slowest thread, and on a busy machine a
            # descheduled thread stalls them all (an epoch took ten times longer with two threads
            # on a loaded 2-core machine). The evaluation passes work on 4096 vectors at a time and
            # keep PyTorch's default. NumPy's second BLAS thread made the covariance products slower.
            with limit_threads(cfg.threads):
                train_loss = self._epoch(bank, train_starts, epoch, optimizer, scaler, use_amp, seed)
            val_loss = self._mean_loss(bank, val_starts) if len(val_starts) else float("nan")
            seconds = time.perf_counter() - began
            self.history_.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds})
            torch_save({
                "fingerprint": stamp,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "history": self.history_,
            }, checkpoint)
            log.info("epoch %d/%d: loss %.4f, validation loss %.4f (%.1f s)", epoch, cfg.epochs, train_loss, val_loss, seconds)

    def _resume(self, checkpoint: Path, stamp: str, epochs: int, optimizer, scaler) -> int:
        """Load `checkpoint` if it belongs to this training run; return the epoch it ended."""
        state = resume_state(checkpoint, stamp, epochs, self.ctx.device)
        if state is None:
            return 0
        self.model_.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        self.history_ = list(state["history"])
        return int(state["epoch"])

    def _epoch(self, bank: FrameBank, starts: torch.Tensor, epoch: int, optimizer, scaler, use_amp: bool,
               seed: int) -> float:
        """One pass over the training vectors in a shuffled order fixed by (seed, epoch), so a
        resumed run takes the same steps as an uninterrupted one. Returns the mean loss."""
        model = self.model_
        model.train()
        batch = self.ctx.cfg.autoencoder.batch_size
        order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(starts)))
        total = torch.zeros((), dtype=torch.float64, device=self.ctx.device)
        seen = 0
        steps = range(0, len(order), batch)
        for i in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, mininterval=1.0):
            x = bank.gather(starts[order[i:i + batch]])
            if len(x) < 2:  # batch normalisation needs two vectors
                continue
            with autocast(self.ctx.device, torch.float16 if use_amp else None):
                loss = F.mse_loss(model(x).float(), x)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * len(x)
            seen += len(x)
        return float(total) / max(seen, 1)

    @torch.inference_mode()
    def _mean_loss(self, bank: FrameBank, starts: torch.Tensor) -> float:
        """Mean squared reconstruction error over the given vectors (evaluation mode)."""
        self.model_.eval()
        total = 0.0
        for i in range(0, len(starts), EVAL_VECTORS):
            x = bank.gather(starts[i:i + EVAL_VECTORS])
            total += float(((self.model_(x) - x) ** 2).sum())
        return total / (len(starts) * bank.vector_dim)

    # ---- residual statistics and scores -----------------------------------------------------

    def fit_scorers(self, bank: FrameBank, clips: list[Clip]) -> "AutoencoderSystem":
        """The explicit step after training: one pass of every training clip through the network
        fits the per-domain residual covariances and gives the training clips' scores.

        Args:
            bank: the clips' frames, in the order of `clips`.
            clips: the training clips (their domain picks the covariance they contribute to).
        """
        began = time.perf_counter()
        domains = [_domain(c) for c in clips]
        with limit_threads(self.ctx.cfg.autoencoder.threads, torch_too=False):
            mean_residuals, mse, moments = self._residual_pass(bank, domains)
        self.mahalanobis_ = SelectiveMahalanobis(self.ctx.cfg.autoencoder.covariance_ridge).fit(moments)
        self.train_scores_ = {"mse": mse, "mahala": self.mahalanobis_.score(mean_residuals).numpy()}
        log.info("residual covariances fitted on %s context vectors (%.1f s)",
                 ", ".join(f"{d} {m.n_}" for d, m in sorted(moments.items())), time.perf_counter() - began)
        return self

    @torch.inference_mode()
    def _residual_pass(self, bank: FrameBank, domains: list[str] | None = None
                       ) -> tuple[torch.Tensor, np.ndarray, dict[str, ResidualMoments]]:
        """Every context vector of every clip through the network once (evaluation mode).

        Returns:
            mean_residuals: [clips, dim] float64, each clip's mean of `x - reconstruction`.
            mse: [clips] float64, each clip's mean squared reconstruction error.
            moments: domain -> residual moments of its clips' vectors (only if `domains` is given).
        """
        model = self.model_
        model.eval()
        device = self.ctx.device
        starts, clip_ids = bank.vector_starts()
        dim = bank.vector_dim
        sums = torch.zeros((bank.n_clips, dim), dtype=torch.float64)
        squares = torch.zeros(bank.n_clips, dtype=torch.float64)
        moments: dict[str, ResidualMoments] = {}
        vector_domain = None
        if domains is not None:
            names = sorted(set(domains))
            moments = {d: ResidualMoments(dim) for d in names}
            vector_domain = torch.tensor([names.index(d) for d in domains])[clip_ids].to(device)
        clip_ids_dev = clip_ids.to(device)
        for i in range(0, len(starts), EVAL_VECTORS):
            ids = clip_ids[i:i + EVAL_VECTORS]
            x = bank.gather(starts[i:i + EVAL_VECTORS])
            residual = x - model(x)
            # A batch covers a few consecutive clips (vectors come clip after clip): sum into those rows only.
            first, last = int(ids[0]), int(ids[-1])
            chunk = torch.zeros((last - first + 1, dim), dtype=torch.float32, device=device)
            chunk.index_add_(0, clip_ids_dev[i:i + EVAL_VECTORS] - first, residual)
            sums[first:last + 1] += chunk.to("cpu", torch.float64)
            per_vector = (residual ** 2).mean(1).to("cpu", torch.float64)
            squares.index_add_(0, ids, per_vector)
            if vector_domain is not None:
                part = vector_domain[i:i + EVAL_VECTORS]
                for k, name in enumerate(names):
                    moments[name].update(residual[part == k])
        counts = bank.vectors_per_clip.double()
        return sums / counts[:, None], (squares / counts).numpy(), moments

    def score(self, clips: list[Clip], scorer: str) -> np.ndarray:
        if scorer not in self.scorers:
            raise KeyError(f"unknown scorer {scorer!r}; valid: {', '.join(self.scorers)}")
        _, bank = self._frame_bank(clips, training=False)
        mean_residuals, mse, _ = self._residual_pass(bank)
        if scorer == "mse":
            return mse
        return self.mahalanobis_.score(mean_residuals).numpy()

    # ---- persistence ----------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        torch_save({
            "format": FORMAT_VERSION,
            "config": self.config_,
            "input_dim": self.model_.input_dim,
            "model": {k: v.cpu() for k, v in self.model_.state_dict().items()},
            "mahalanobis": self.mahalanobis_.state_dict(),
            "history": self.history_,
        }, Path(model_dir) / MODEL_FILE)

    @classmethod
    def load(cls, model_dir: Path, ctx: RunContext) -> "AutoencoderSystem":
        state = load_model_state(Path(model_dir) / MODEL_FILE, FORMAT_VERSION, ctx)
        system = cls(ctx)
        system.config_ = state["config"]
        net_cfg = AutoencoderConfig(**state["config"]["autoencoder"])
        system.model_ = DenseAutoencoder.from_config(state["input_dim"], net_cfg)
        system.model_.load_state_dict(state["model"])
        system.model_.to(ctx.device).eval()
        system.mahalanobis_ = SelectiveMahalanobis.from_state_dict(state["mahalanobis"])
        system.history_ = list(state["history"])
        return system


def split_clips(domains: list[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out `fraction` of each domain's clips (rounded down, never a domain's last clip).

    Whole clips are held out, not context vectors, so validation vectors do not overlap frames
    the network was trained on.

    Returns:
        train, validation: sorted clip indices.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"autoencoder.validation_split must lie in [0, 1), got {fraction}")
    rng = np.random.default_rng([seed, 0])
    labels = np.array(domains)
    held: list[int] = []
    for domain in sorted(set(domains)):
        members = np.flatnonzero(labels == domain)
        n_val = min(int(len(members) * fraction), len(members) - 1)
        held += rng.permutation(members)[:n_val].tolist()
    validation = np.array(sorted(held), dtype=np.int64)
    train = np.setdiff1d(np.arange(len(domains)), validation)
    return train, validation


def _domain(clip: Clip) -> str:
    """Clips without a domain (2020 data) belong to the source domain."""
    return clip.domain or "source"
