"""The BEATs classifier (encoder + pooling + projection + margin head) and its training loop.

Reads a `networks.beats.balancing.TrainingSet` (fbank `[clips, frames, 128]`, frame masks, labels) and
the `beats` configuration section. Writes, in the model folder, `checkpoint.pt` after every epoch
(network, optimiser, scheduler, gradient scaler, random state, history, and a fingerprint of
everything that shapes training; a rerun with the same fingerprint resumes after the last saved
epoch) and `training_log.csv` (one row per epoch: loss, accuracy, learning rates, head scale,
seconds), ready to plot.

Training: AdamW with layer-wise learning-rate decay on the encoder (the top layer learns at
`encoder_lr`, each layer below `layer_decay` times slower, the patch embedding slowest), a linear
warm-up and then cosine cycles with warm restarts, gradient accumulation, bf16/fp16 autocast on
GPUs, optional LoRA adapters (peft) on the attention projections or a frozen encoder.

Distributed (torchrun, PyTorch DDP): `batch_size` is the global number of clips per forward pass;
every process takes an interleaved share of each batch and the loss is normalised by the global
number of clips per optimiser step, so N processes take the same steps as one process would.
Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm

from core.atomic import torch_save, write_csv
from core.config import BeatsConfig
from core.runtime import autocast, distributed_rank_and_size
from networks.beats import BEATs
from networks.beats.balancing import TrainingSet
from networks.margin_heads import CosineHead
from networks.training import resume_state

log = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"
TRAINING_LOG_FILE = "training_log.csv"
CHECKPOINT_FORMAT = 1  # part of the training stamp: a checkpoint of another layout never resumes
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
LOG_COLUMNS = ["epoch", "loss", "accuracy", "lr", "encoder_lr", "scale", "seconds", "clips"]


class BeatsClassifier(nn.Module):
    """Encoder -> pooling -> projection -> (head, in training). Embeddings feed the k-NN scorer.

    With `freeze_encoder`, the encoder runs without gradients and always in evaluation mode.
    Without a projection (`embedding_dim` None) the pooled vector is the embedding.
    """

    def __init__(
        self,
        encoder: nn.Module,
        pooling: nn.Module,
        embedding_dim: int | None,
        head: CosineHead | None,
        freeze_encoder: bool,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.projection = nn.Linear(pooling.out_dim, embedding_dim, bias=False) if embedding_dim else None
        self.head = head
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)

    @property
    def embedding_dim(self) -> int:
        return self.projection.out_features if self.projection is not None else self.pooling.out_dim

    def train(self, mode: bool = True) -> BeatsClassifier:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def embed_fbank(self, fbank: Tensor, frame_mask: Tensor | None) -> Tensor:
        """Normalised fbank `[batch, frames, 128]` (+ frame mask) -> embeddings `[batch, embedding_dim]`."""
        with torch.no_grad() if self.freeze_encoder else contextlib.nullcontext():
            features, token_mask = self.encoder.encode_fbank(fbank.float(), frame_mask)
        pooled = self.pooling(features, token_mask)
        return self.projection(pooled) if self.projection is not None else pooled

    def embed_wave(self, wave: Tensor, padding_mask: Tensor | None) -> Tensor:
        """Waveforms `[batch, samples]` (+ sample mask, True = padded) -> embeddings `[batch, embedding_dim]`."""
        with torch.no_grad() if self.freeze_encoder else contextlib.nullcontext():
            features, token_mask = self.encoder.extract_features(wave, padding_mask)
        pooled = self.pooling(features, token_mask)
        return self.projection(pooled) if self.projection is not None else pooled

    def forward(self, fbank: Tensor, frame_mask: Tensor | None, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Per-clip losses `[batch]` and class logits `[batch, classes]`."""
        if self.head is None:
            raise RuntimeError("this classifier has no head to train")
        loss, logits = self.head(self.embed_fbank(fbank, frame_mask), labels)
        return loss, logits


def apply_lora(encoder: BEATs, rank: int, alpha: float) -> nn.Module:
    """Wrap the encoder with peft LoRA adapters on q/k/v/out projections; the rest is frozen."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=LORA_TARGETS, lora_dropout=0.0, bias="none")
    return get_peft_model(encoder, config)


def merge_lora(encoder: nn.Module) -> BEATs:
    """Fold LoRA adapters into the projections and return the plain encoder (no-op without adapters)."""
    if hasattr(encoder, "merge_and_unload"):
        return encoder.merge_and_unload()
    return encoder


def encoder_layer_id(name: str, n_layers: int) -> int:
    """0 for everything below the transformer layers (patch embedding, positional conv, input
    norms), `i + 1` for layer `i`; so the top layer has id `n_layers`."""
    match = re.search(r"encoder\.layers\.(\d+)\.", name)
    return int(match.group(1)) + 1 if match else 0


def _no_decay(name: str, param: Tensor) -> bool:
    return param.ndim <= 1 or name.endswith(".bias") or "weight_g" in name or "relative_attention_bias" in name


def parameter_groups(model: BeatsClassifier, cfg: BeatsConfig) -> list[dict]:
    """AdamW groups: head, pooling and projection at `lr`; encoder layers at `encoder_lr *
    layer_decay ** (n_layers - layer_id)`; weight decay on matrices only."""
    n_layers = model.encoder.cfg.encoder_layers
    groups: dict[tuple[str, int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = not _no_decay(name, param)
        if name.startswith("encoder."):
            layer = encoder_layer_id(name, n_layers)
            lr = cfg.encoder_lr * cfg.layer_decay ** (n_layers - layer)
            key = ("encoder", layer, decay)
        else:
            lr, key = cfg.lr, ("head", 0, decay)
        group = groups.setdefault(
            key,
            {
                "params": [],
                "lr": lr,
                "weight_decay": cfg.weight_decay if decay else 0.0,
                "name": f"{key[0]}{key[1] if key[0] == 'encoder' else ''}",
            },
        )
        group["params"].append(param)
    return [groups[k] for k in sorted(groups)]


def lr_factor(step: int, steps_per_epoch: int, cfg: BeatsConfig) -> float:
    """Learning-rate multiplier at optimiser step `step`: linear warm-up, then cosine cycles.

    Written out rather than chaining torch schedulers: SequentialLR with warm restarts has
    surprising step-count semantics, and one formula is easy to check and to resume.
    """
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    total_after = max(1, cfg.epochs * steps_per_epoch - warmup)
    period = int(round(cfg.restart_period * steps_per_epoch)) if cfg.restart_period > 0 else total_after
    position = (step - warmup) % max(1, period)
    return 0.5 * (1.0 + math.cos(math.pi * position / max(1, period)))


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `beats.amp` on `device`, or None for float32."""
    valid = ("auto", "bf16", "fp16", "off")
    if amp not in valid:
        raise ValueError(f"beats.amp must be one of {', '.join(valid)}, got {amp!r}")
    if device.type != "cuda" or amp == "off":
        if amp in ("bf16", "fp16"):
            log.info("beats.amp=%s applies to GPUs; the %s runs float32", amp, device.type)
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def epoch_plan(
    n_clips: int, epoch: int, seed: int, batch_size: int, grad_accum: int, world: int
) -> list[list[np.ndarray]]:
    """Optimiser steps of one epoch, each a list of global micro-batches (clip indices).

    The order depends only on (seed, epoch), so a resumed run takes the same steps. A last
    micro-batch smaller than the number of processes is dropped (every process needs a clip).
    """
    order = np.random.default_rng([seed, epoch]).permutation(n_clips)
    micro = [order[i : i + batch_size] for i in range(0, n_clips, batch_size)]
    if micro and len(micro[-1]) < world:
        micro.pop()
    return [micro[i : i + grad_accum] for i in range(0, len(micro), grad_accum)]


def write_training_log(path: Path, history: list[dict]) -> None:
    """The per-epoch history as CSV (header + one row per epoch), written atomically."""
    write_csv(path, [LOG_COLUMNS] + [[row[c] for c in LOG_COLUMNS] for row in history])


def _head_scale(model: BeatsClassifier) -> float:
    scale = getattr(model.head, "scale", float("nan"))
    return float(scale)


class Trainer:
    """Trains a `BeatsClassifier` in place; `fit` returns the per-epoch history."""

    def __init__(
        self, model: BeatsClassifier, cfg: BeatsConfig, device: torch.device, workdir: Path, fingerprint: str, seed: int
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.device = device
        self.workdir = Path(workdir)
        self.fingerprint = fingerprint
        self.seed = seed
        self.rank, self.world = distributed_rank_and_size()
        self.history: list[dict] = []

    def fit(self, data: TrainingSet) -> list[dict]:
        cfg = self.cfg
        if cfg.batch_size < self.world:
            raise ValueError(f"beats.batch_size {cfg.batch_size} is smaller than the {self.world} processes")
        model = self.model.to(self.device)
        amp_dtype = resolve_amp(cfg.amp, self.device)
        groups = parameter_groups(model, cfg)
        optimizer = torch.optim.AdamW(groups, betas=(0.9, 0.999))
        steps_per_epoch = len(epoch_plan(len(data), 1, self.seed, cfg.batch_size, cfg.grad_accum, self.world))
        if steps_per_epoch == 0:
            raise ValueError(f"{len(data)} training clips do not fill one batch of {cfg.batch_size}")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, steps_per_epoch, cfg))
        scaler = torch.amp.GradScaler(self.device.type, enabled=amp_dtype == torch.float16)
        checkpoint = self.workdir / CHECKPOINT_FILE
        start = self._resume(checkpoint, optimizer, scheduler, scaler)
        trainable = sum(p.numel() for g in groups for p in g["params"])
        if start >= cfg.epochs:
            log.info("all %d epochs are in the checkpoint: nothing left to train", cfg.epochs)
            return self.history
        log.info(
            "training %d parameters in %d groups for epochs %d-%d: %d steps per epoch of %d x %d clips over "
            "%d process(es), device %s, %s",
            trainable,
            len(groups),
            start + 1,
            cfg.epochs,
            steps_per_epoch,
            cfg.batch_size,
            cfg.grad_accum,
            self.world,
            self.device,
            f"autocast {amp_dtype}".replace("torch.", "") if amp_dtype else "float32",
        )
        network: nn.Module = model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Layer drop skips whole layers at random, leaving their parameters without gradients.
            unused = model.encoder.cfg.encoder_layerdrop > 0 and not model.freeze_encoder
            network = DistributedDataParallel(
                model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=unused,
            )
        for epoch in range(start + 1, cfg.epochs + 1):
            began = time.perf_counter()
            loss, accuracy, clips = self._epoch(network, data, epoch, optimizer, scheduler, scaler, amp_dtype)
            lrs = {g["name"]: g["lr"] for g in optimizer.param_groups}
            top = f"encoder{model.encoder.cfg.encoder_layers}"
            row = {
                "epoch": epoch,
                "loss": round(loss, 6),
                "accuracy": round(accuracy, 6),
                "lr": lrs.get("head", 0.0),
                "encoder_lr": lrs.get(top, 0.0),
                "scale": round(_head_scale(model), 4),
                "seconds": round(time.perf_counter() - began, 3),
                "clips": clips,
            }
            self.history.append(row)
            if self.rank == 0:
                torch_save(
                    {
                        "fingerprint": self.fingerprint,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                        "history": self.history,
                    },
                    checkpoint,
                )
                write_training_log(self.workdir / TRAINING_LOG_FILE, self.history)
            if self.world > 1:
                dist.barrier()
            log.info(
                "epoch %d/%d: loss %.4f, accuracy %.3f, lr %.2e, scale %.2f (%.1f s)",
                epoch,
                cfg.epochs,
                loss,
                accuracy,
                row["lr"],
                row["scale"],
                row["seconds"],
            )
        return self.history

    def _resume(self, checkpoint: Path, optimizer, scheduler, scaler) -> int:
        """Load `checkpoint` if it belongs to this training run; return the epoch it ended."""
        state = resume_state(checkpoint, self.fingerprint, self.cfg.epochs, "cpu")
        if state is None:
            return 0
        self.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.history = list(state["history"])
        return int(state["epoch"])

    def _epoch(
        self,
        network: nn.Module,
        data: TrainingSet,
        epoch: int,
        optimizer,
        scheduler,
        scaler,
        amp_dtype: torch.dtype | None,
    ) -> tuple[float, float, int]:
        """One pass over the training set; returns the global mean loss, accuracy and clip count."""
        cfg, device, rank, world = self.cfg, self.device, self.rank, self.world
        network.train()
        plan = epoch_plan(len(data), epoch, self.seed, cfg.batch_size, cfg.grad_accum, world)
        # loss sum, correct, clips (this process), kept on the device: reading them back would make
        # the CPU wait for the GPU after every micro-batch
        totals = torch.zeros(3, dtype=torch.float64, device=device)
        bar = tqdm(
            plan, desc=f"epoch {epoch}/{cfg.epochs}", unit="step", disable=rank != 0, leave=False, mininterval=1.0
        )
        for step in bar:
            clips_in_step = sum(len(mb) for mb in step)
            for i, micro in enumerate(step):
                share = torch.from_numpy(micro[rank::world])
                fbank = data.fbank[share].to(device, non_blocking=True)
                mask = data.frame_mask[share].to(device, non_blocking=True)
                labels = data.labels[share].to(device, non_blocking=True)
                sync = i == len(step) - 1 or world == 1
                with contextlib.nullcontext() if sync else network.no_sync():
                    with autocast(device, amp_dtype):
                        losses, logits = network(fbank, mask, labels)
                    # Sum over this share, scaled so DDP's gradient average equals the mean over
                    # every clip of the optimiser step, whatever the number of processes.
                    scaler.scale(losses.float().sum() * world / clips_in_step).backward()
                totals[0] += losses.detach().float().sum().double()
                totals[1] += (logits.argmax(dim=1) == labels).sum()
                totals[2] += len(share)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            if rank == 0:
                bar.set_postfix(loss=f"{totals[0] / max(totals[2], 1):.3f}", refresh=False)
        if world > 1:
            dist.all_reduce(totals)
        totals = totals.cpu()
        clips = max(int(totals[2]), 1)
        return float(totals[0]) / clips, float(totals[1]) / clips, int(totals[2])
