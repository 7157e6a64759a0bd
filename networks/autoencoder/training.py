"""Training of an autoencoder network: its loss (MSE reconstruction; the VAE's negative ELBO), Adam,
shuffled batches of context vectors.

Reads a `FrameBank` of the training clips' log-mels; writes `checkpoint.pt` in the model folder
after every epoch (network, optimiser, loss history and a fingerprint of everything that shapes
training), from which a rerun after a crash or kill resumes. A stratified fraction of the training
clips is held out and only reports a validation loss. `residual_pass` is the one evaluation pass
that both the Selective Mahalanobis fit and scoring use.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.atomic import torch_save
from core.config import AutoencoderConfig
from core.runtime import autocast, limit_threads
from networks.autoencoder.frames import FrameBank
from networks.autoencoder.model import ContextAutoencoder
from networks.mahalanobis import ResidualMoments
from networks.training import resume_state

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
EVAL_VECTORS = 4096  # context vectors per forward pass outside training (memory, not results)


def train(
    model: ContextAutoencoder,
    bank: FrameBank,
    domains: list[str],
    cfg: AutoencoderConfig,
    seed: int,
    device: torch.device,
    workdir: Path,
    stamp: str,
) -> list[dict]:
    """Train `model` for `cfg.epochs`, resuming from `workdir/checkpoint.pt` when it belongs to this
    run (`stamp`). Returns the history: per epoch, epoch, train_loss, val_loss, seconds."""
    use_amp = cfg.amp and device.type == "cuda"
    train_idx, val_idx = split_clips(domains, cfg.validation_split, seed)
    train_starts, _ = bank.vector_starts(train_idx)
    val_starts, _ = bank.vector_starts(val_idx)
    log.info(
        "training on %d clips (%d context vectors), validating on %d clips (%d vectors), device %s%s",
        len(train_idx),
        len(train_starts),
        len(val_idx),
        len(val_starts),
        device,
        ", float16 AMP" if use_amp else "",
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)
    checkpoint = workdir / CHECKPOINT_FILE
    history: list[dict] = []
    start = 0
    state = resume_state(checkpoint, stamp, cfg.epochs, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        history, start = list(state["history"]), int(state["epoch"])
    for epoch in range(start + 1, cfg.epochs + 1):
        began = time.perf_counter()
        # Only the training steps limit PyTorch: their operations are small (batches of 256
        # vectors), so every one waits for its slowest thread, and on a busy machine a
        # descheduled thread stalls them all (an epoch took ten times longer with two threads
        # on a loaded 2-core machine). The evaluation passes work on 4096 vectors at a time and
        # keep PyTorch's default. NumPy's second BLAS thread made the covariance products slower.
        with limit_threads(cfg.threads):
            train_loss = _epoch(
                model, bank, train_starts, epoch, optimizer, scaler, use_amp, seed, cfg.batch_size, device
            )
        val_loss = _mean_loss(model, bank, val_starts) if len(val_starts) else float("nan")
        seconds = time.perf_counter() - began
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds})
        torch_save(
            {
                "fingerprint": stamp,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "history": history,
            },
            checkpoint,
        )
        log.info(
            "epoch %d/%d: loss %.4f, validation loss %.4f (%.1f s)", epoch, cfg.epochs, train_loss, val_loss, seconds
        )
    return history


def _epoch(
    model: ContextAutoencoder,
    bank: FrameBank,
    starts: torch.Tensor,
    epoch: int,
    optimizer,
    scaler,
    use_amp: bool,
    seed: int,
    batch: int,
    device: torch.device,
) -> float:
    """One pass over the training vectors in a shuffled order fixed by (seed, epoch), so a
    resumed run takes the same steps as an uninterrupted one. Returns the mean loss."""
    model.train()
    order = torch.from_numpy(np.random.default_rng([seed, epoch]).permutation(len(starts)))
    # The draws of a sampling network (the VAE) come from a generator seeded like the order.
    generator = torch.Generator(device).manual_seed(int(np.random.default_rng([seed, epoch, 1]).integers(2**62)))
    total = torch.zeros((), dtype=torch.float64, device=device)
    seen = 0
    steps = range(0, len(order), batch)
    for i in tqdm(steps, desc=f"epoch {epoch}", unit="batch", leave=False, mininterval=1.0):
        x = bank.gather(starts[order[i : i + batch]])
        if len(x) < 2:  # batch normalisation needs two vectors
            continue
        with autocast(device, torch.float16 if use_amp else None):
            loss = model.loss(x, generator)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        total += loss.detach() * len(x)
        seen += len(x)
    return float(total) / max(seen, 1)


@torch.inference_mode()
def _mean_loss(model: ContextAutoencoder, bank: FrameBank, starts: torch.Tensor) -> float:
    """Mean squared reconstruction error over the given vectors (evaluation mode)."""
    model.eval()
    total = 0.0
    for i in range(0, len(starts), EVAL_VECTORS):
        x = bank.gather(starts[i : i + EVAL_VECTORS])
        total += float(((model(x) - x) ** 2).sum())
    return total / (len(starts) * bank.vector_dim)


@torch.inference_mode()
def residual_pass(
    model: ContextAutoencoder, bank: FrameBank, device: torch.device, domains: list[str] | None = None
) -> tuple[torch.Tensor, np.ndarray, dict[str, ResidualMoments], np.ndarray | None]:
    """Every context vector of every clip through the network once (evaluation mode).

    Returns:
        mean_residuals: [clips, dim] float64, each clip's mean of `x - reconstruction`.
        mse: [clips] float64, each clip's mean squared reconstruction error.
        moments: domain -> residual moments of its clips' vectors (only if `domains` is given).
        divergence: [clips] float64, each clip's mean KL divergence per vector of a variational
            network's posterior from its prior; None for the other networks.
    """
    model.eval()
    starts, clip_ids = bank.vector_starts()
    dim = bank.vector_dim
    sums = torch.zeros((bank.n_clips, dim), dtype=torch.float64)
    squares = torch.zeros(bank.n_clips, dtype=torch.float64)
    divergences = None
    moments: dict[str, ResidualMoments] = {}
    vector_domain = None
    if domains is not None:
        names = sorted(set(domains))
        moments = {d: ResidualMoments(dim) for d in names}
        vector_domain = torch.tensor([names.index(d) for d in domains])[clip_ids].to(device)
    clip_ids_dev = clip_ids.to(device)
    for i in range(0, len(starts), EVAL_VECTORS):
        ids = clip_ids[i : i + EVAL_VECTORS]
        x = bank.gather(starts[i : i + EVAL_VECTORS])
        reconstruction, divergence = model.reconstruct(x)
        residual = x - reconstruction
        if divergence is not None:
            divergences = torch.zeros(bank.n_clips, dtype=torch.float64) if divergences is None else divergences
            divergences.index_add_(0, ids, divergence.to("cpu", torch.float64))
        # A batch covers a few consecutive clips (vectors come clip after clip): sum into those rows only.
        first, last = int(ids[0]), int(ids[-1])
        chunk = torch.zeros((last - first + 1, dim), dtype=torch.float32, device=device)
        chunk.index_add_(0, clip_ids_dev[i : i + EVAL_VECTORS] - first, residual)
        sums[first : last + 1] += chunk.to("cpu", torch.float64)
        per_vector = (residual**2).mean(1).to("cpu", torch.float64)
        squares.index_add_(0, ids, per_vector)
        if vector_domain is not None:
            part = vector_domain[i : i + EVAL_VECTORS]
            for k, name in enumerate(names):
                moments[name].update(residual[part == k])
    counts = bank.vectors_per_clip.double()
    divergence_per_clip = None if divergences is None else (divergences / counts).numpy()
    return sums / counts[:, None], (squares / counts).numpy(), moments, divergence_per_clip


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
