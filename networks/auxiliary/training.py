"""Training and embedding passes of the auxiliary network, as functions of explicit arguments.

Reads the clips' inputs held in memory (`ClipInputs`: log-mel frames and clip spectra), their
class indices and the `auxiliary` settings; writes, in the member's folder, `checkpoint.pt` after
every epoch (network, optimiser, scheduler, history, and a fingerprint of everything that shapes
training; a rerun with the same fingerprint resumes after the last saved epoch) and
`training_log.csv` (one row per epoch: loss, accuracy, learning rate, head scale, seconds).

Training: AdamW with a cosine decay of the learning rate to zero over all steps; each epoch a
shuffled pass in batches, each clip a random crop of `train_frames` log-mel frames (its whole
spectrum), optional SpecAugment masks, optional mixup of each clip with another of the batch
(inputs and class weights alike), a margin head's loss; bf16 autocast on GPUs. Every random draw
of an epoch comes from a generator seeded by (seed, epoch), so a resumed run takes exactly the
steps an uninterrupted one takes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from core.atomic import torch_save, write_csv
from core.config import AuxiliaryConfig
from core.runtime import autocast
from networks.auxiliary.model import AuxiliaryNet
from networks.margin_heads import get_head
from networks.training import resume_state

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
TRAINING_LOG_FILE = "training_log.csv"
LOG_COLUMNS = ["epoch", "loss", "accuracy", "lr", "scale", "seconds", "clips"]


@dataclass
class ClipInputs:
    """The inputs of a set of clips, each held once in memory.

    Attributes:
        log_mels: one `[frames_i, n_mels]` float32 tensor per clip, or None.
        spectra: [clips, bins] float32, or None.
    """

    log_mels: list[torch.Tensor] | None
    spectra: torch.Tensor | None

    def __len__(self) -> int:
        return len(self.log_mels) if self.log_mels is not None else len(self.spectra)

    def frames(self) -> np.ndarray:
        """[clips] log-mel frames per clip (all 1 without the log-mel branch)."""
        if self.log_mels is None:
            return np.ones(len(self), dtype=np.int64)
        return np.array([len(x) for x in self.log_mels], dtype=np.int64)

    def to(self, device: torch.device) -> ClipInputs:
        if self.log_mels is not None:
            self.log_mels = [x.to(device) for x in self.log_mels]
        if self.spectra is not None:
            self.spectra = self.spectra.to(device)
        return self

    def batch(self, clips: np.ndarray, starts: np.ndarray, frames: int) -> dict[str, torch.Tensor]:
        """Raw inputs of some clips: `frames` log-mel frames from `starts` (`[batch, frames, n_mels]`) and
        the spectra (`[batch, bins]`), on the inputs' device."""
        batch = {}
        if self.log_mels is not None:
            batch["logmel"] = torch.stack([self.log_mels[c][s : s + frames] for c, s in zip(clips, starts)])
        if self.spectra is not None:
            batch["spectrum"] = self.spectra[torch.as_tensor(clips, device=self.spectra.device)]
        return batch


def clip_inputs(log_mels: list[np.ndarray] | None, spectra: list[np.ndarray] | None) -> ClipInputs:
    """`ClipInputs` from feature arrays (e.g. the cache's memory maps), each copied once; the lists
    are emptied as they are copied, so the features are never held twice."""
    tensors = None
    if log_mels is not None:
        tensors = []
        while log_mels:  # from the end: each array (or memory map) is released once copied
            tensors.append(torch.from_numpy(np.array(log_mels.pop(), dtype=np.float32)))
        tensors.reverse()
    stacked = None
    if spectra is not None:
        stacked = torch.from_numpy(np.stack(spectra).astype(np.float32, copy=False))
        spectra.clear()
    return ClipInputs(tensors, stacked)


def amp_dtype(enabled: bool, device: torch.device) -> torch.dtype | None:
    """bf16 on a GPU that supports it when `enabled`; otherwise None (float32). No float16: its
    gradient scaler is not worth it for a network this small."""
    if enabled and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def build_network(cfg: AuxiliaryConfig, n_mels: int, bins: int, n_classes: int, seed: int) -> AuxiliaryNet:
    """The network and margin head `cfg` describes, initialised from `seed` (without touching the
    global random state, so ensemble members differ only by their seed)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        embedding_dim = cfg.embedding_dim * len(cfg.branches)
        head = get_head(cfg.head, embedding_dim, n_classes, cfg.subclusters, cfg.margin, cfg.scale)
        return AuxiliaryNet(
            cfg.branches,
            n_mels,
            bins,
            cfg.channels,
            cfg.blocks,
            cfg.pooling,
            cfg.attention_dim,
            cfg.embedding_dim,
            head,
        )


def set_input_statistics(network: AuxiliaryNet, inputs: ClipInputs) -> None:
    """Standardise each branch's input by the per-band mean and std of the training inputs
    (over every frame of every clip; sums in float64, one clip at a time)."""
    if inputs.log_mels is not None:
        n_mels = inputs.log_mels[0].shape[1]
        total, squares, count = torch.zeros(n_mels, dtype=torch.float64), torch.zeros(n_mels, dtype=torch.float64), 0
        for x in inputs.log_mels:
            x = x.to("cpu", torch.float64)
            total += x.sum(0)
            squares += (x * x).sum(0)
            count += len(x)
        mean = total / count
        std = (squares / count - mean * mean).clamp_min(0).sqrt()
        network.set_input_statistics("logmel", mean.float(), std.float())
    if inputs.spectra is not None:
        network.set_input_statistics("spectrum", inputs.spectra.mean(0).cpu(), inputs.spectra.std(0).cpu())


def crop_frames(cfg: AuxiliaryConfig, frames: np.ndarray) -> int:
    """Frames of the training crop: `train_frames`, at most the shortest clip (0: the shortest clip)."""
    shortest = int(frames.min())
    return shortest if cfg.train_frames == 0 else min(cfg.train_frames, shortest)


def mask_spans(x: torch.Tensor, fraction: float, rng: np.random.Generator) -> torch.Tensor:
    """SpecAugment: one time and one mel span per clip, each up to `fraction` of its axis, set to 0
    (the training mean of standardised inputs). `x`: [batch, frames, n_mels]."""
    batch, frames, mels = x.shape
    keep = torch.ones_like(x, dtype=torch.bool)
    for axis, size in ((1, frames), (2, mels)):
        width = rng.integers(0, int(fraction * size) + 1, size=batch)
        start = rng.integers(0, size - width + 1)
        position = torch.arange(size, device=x.device)
        span = (position >= torch.as_tensor(start, device=x.device)[:, None]) & (
            position < torch.as_tensor(start + width, device=x.device)[:, None]
        )  # [batch, size]
        keep &= ~(span[:, :, None] if axis == 1 else span[:, None, :])
    return x * keep


def mixup(
    inputs: dict[str, torch.Tensor], targets: torch.Tensor, n_classes: int, alpha: float, rng: np.random.Generator
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Each clip mixed with another of the batch, weight ~ Beta(alpha, alpha) per clip.

    Returns:
        the mixed inputs and the class weights `[batch, classes]` (the two clips' one-hot vectors,
        mixed with the same weight).
    """
    batch = len(targets)
    device = targets.device
    weight = torch.as_tensor(rng.beta(alpha, alpha, size=batch), dtype=torch.float32, device=device)
    partner = torch.as_tensor(rng.permutation(batch), device=device)
    mixed = {}
    for name, x in inputs.items():
        w = weight.view(-1, *([1] * (x.dim() - 1)))
        mixed[name] = w * x + (1 - w) * x[partner]
    one_hot = F.one_hot(targets, n_classes).float()
    return mixed, weight[:, None] * one_hot + (1 - weight[:, None]) * one_hot[partner]


def epoch_batches(n_clips: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled pass in batches; a last batch of one clip is dropped (batch normalisation needs two)."""
    order = rng.permutation(n_clips)
    batches = [order[i : i + batch_size] for i in range(0, n_clips, batch_size)]
    return [b for b in batches if len(b) > 1]


def train_network(
    network: AuxiliaryNet,
    cfg: AuxiliaryConfig,
    inputs: ClipInputs,
    targets: np.ndarray,
    device: torch.device,
    workdir: Path,
    stamp: str,
    seed: int,
) -> list[dict]:
    """Train `network` (with its head) in place on the clips' class indices `targets` [clips].

    Args:
        inputs: the training clips' inputs (moved to `device` by the caller).
        workdir: where checkpoints and the training log go; a checkpoint with fingerprint `stamp`
            there is resumed.
        seed: seeds every epoch's random draws.

    Returns:
        The per-epoch history (also in `training_log.csv`).
    """
    network.to(device)
    workdir.mkdir(parents=True, exist_ok=True)
    n_classes = network.head.n_classes
    lengths = inputs.frames()
    frames = crop_frames(cfg, lengths)
    labels = torch.as_tensor(targets, device=device)
    dtype = amp_dtype(cfg.amp, device)
    optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(epoch_batches(len(inputs), cfg.batch_size, np.random.default_rng(0)))
    if steps_per_epoch == 0:
        raise ValueError(f"{len(inputs)} training clip(s) do not fill a batch of two")
    total = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: 0.5 * (1.0 + math.cos(math.pi * step / total))
    )
    checkpoint = workdir / CHECKPOINT_FILE
    history: list[dict] = []
    start = 0
    state = resume_state(checkpoint, stamp, cfg.epochs, device)
    if state is not None:
        network.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = list(state["history"]), int(state["epoch"])
    if start >= cfg.epochs:
        log.info("all %d epochs are in the checkpoint: nothing left to train", cfg.epochs)
        return history
    log.info(
        "training %d parameters on %d clips in %d classes, epochs %d-%d of %d steps (batch %d, crops of %d "
        "frames), device %s, %s",
        sum(p.numel() for p in network.parameters()),
        len(inputs),
        n_classes,
        start + 1,
        cfg.epochs,
        steps_per_epoch,
        cfg.batch_size,
        frames,
        device,
        f"autocast {dtype}".replace("torch.", "") if dtype else "float32",
    )
    for epoch in range(start + 1, cfg.epochs + 1):
        began = time.perf_counter()
        rng = np.random.default_rng([seed, epoch])
        network.train()
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, clips (no GPU stalls)
        bar = tqdm(
            epoch_batches(len(inputs), cfg.batch_size, rng),
            desc=f"epoch {epoch}/{cfg.epochs}",
            unit="step",
            leave=False,
            mininterval=1.0,
        )
        for clips in bar:
            starts = rng.integers(0, lengths[clips] - frames + 1)
            x = network.normalise(inputs.batch(clips, starts, frames))
            if cfg.mask_fraction > 0 and "logmel" in x:
                x["logmel"] = mask_spans(x["logmel"], cfg.mask_fraction, rng)
            y = labels[torch.as_tensor(clips, device=device)]
            target = y
            if cfg.mixup_alpha > 0:
                x, target = mixup(x, y, n_classes, cfg.mixup_alpha, rng)
            with autocast(device, dtype):
                losses, logits, _ = network(x, target)
            loss = losses.float().mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            dominant = target.argmax(dim=1) if target.dim() == 2 else target
            totals += torch.stack(
                [
                    losses.detach().float().sum().double(),
                    (logits.argmax(dim=1) == dominant).sum().double(),
                    torch.tensor(float(len(clips)), dtype=torch.float64, device=device),
                ]
            )
        totals = totals.cpu()
        row = {
            "epoch": epoch,
            "loss": round(float(totals[0] / totals[2]), 6),
            "accuracy": round(float(totals[1] / totals[2]), 6),
            "lr": optimizer.param_groups[0]["lr"],
            "scale": round(float(getattr(network.head, "scale", float("nan"))), 4),
            "seconds": round(time.perf_counter() - began, 3),
            "clips": int(totals[2]),
        }
        history.append(row)
        torch_save(
            {
                "fingerprint": stamp,
                "epoch": epoch,
                "model": network.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
            },
            checkpoint,
        )
        write_csv(workdir / TRAINING_LOG_FILE, [LOG_COLUMNS] + [[r[c] for c in LOG_COLUMNS] for r in history])
        log.info(
            "epoch %d/%d: loss %.4f, accuracy %.3f, lr %.2e, scale %.2f (%.1f s, %.0f clips/s)",
            epoch,
            cfg.epochs,
            row["loss"],
            row["accuracy"],
            row["lr"],
            row["scale"],
            row["seconds"],
            row["clips"] / row["seconds"],
        )
    return history


@torch.inference_mode()
def embed(
    network: AuxiliaryNet,
    inputs: ClipInputs,
    device: torch.device,
    batch_size: int,
    dtype: torch.dtype | None,
    desc: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip embeddings and class logits (evaluation mode), clips of equal length batched together.

    Returns:
        embeddings [clips, embedding_dim] float32 and logits [clips, classes] float32, in input order.
    """
    network.to(device).eval()
    lengths = inputs.frames()
    embeddings = np.zeros((len(inputs), network.embedding_dim), dtype=np.float32)
    logits = np.zeros((len(inputs), network.head.n_classes), dtype=np.float32)
    with tqdm(total=len(inputs), desc=desc, unit="clip", mininterval=1.0) as bar:
        for length in np.unique(lengths):
            same = np.flatnonzero(lengths == length)
            for i in range(0, len(same), batch_size):
                clips = same[i : i + batch_size]
                with autocast(device, dtype):
                    embedding = network.embed(inputs.batch(clips, np.zeros(len(clips), dtype=np.int64), int(length)))
                    _, logit = network.head(embedding)
                embeddings[clips] = embedding.float().cpu().numpy()
                logits[clips] = logit.float().cpu().numpy()
                bar.update(len(clips))
    return embeddings, logits
