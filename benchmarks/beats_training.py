"""Time one training step of the BEATs classifier (encoder + pooling + projection + margin head + AdamW).

Reads: `baseline.yaml` (the `beats` section: head, learning rates, layer decay, LoRA rank) and
nothing else: random weights from a preset, random normalised fbank as input.
Writes: `name value unit` lines on stdout, per mode: seconds per optimiser step (best and median
of `--iters`), training clips/s, trainable parameters, and the peak memory of that mode alone
(each mode runs in a fresh process: resident memory on the CPU, allocated memory on the GPU).

    python -m benchmarks.beats_training --preset full --batch 2 --seconds 10 --iters 2

The encoder-only forward figures (clips/s against the machine's matmul ceiling) come from
`benchmarks.beats`. The machine may be shared, so the load average is printed before and
after, and the best of the timed steps is the headline figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

import torch

from benchmarks.common import device_sync, peak_rss_mib, report
from core.config import BeatsConfig, load_config
from core.runtime import autocast, setup_logging
from datasets.fbank import (
    SAMPLE_RATE,  # BEATs' own input rate
    num_frames,
)
from networks.beats import build_beats, get_preset
from networks.beats.system import build_classifier
from networks.beats.training import BeatsClassifier, parameter_groups, resolve_amp

MODES = ("frozen", "lora", "finetune")


def random_classifier(preset: str, mode: str, n_classes: int, overrides: dict) -> tuple[BeatsClassifier, BeatsConfig]:
    """The classifier the BEATs system trains, with random weights, and its `beats` config."""
    cfg = load_config(overrides={"beats.tuning": mode, **overrides}).beats
    encoder = build_beats(get_preset(preset))
    encoder.cfg.encoder_layerdrop = 0.0  # time the full network every step, not a random subset
    return build_classifier(cfg, encoder, n_classes, lora=mode == "lora"), cfg


def benchmark_mode(args: argparse.Namespace, mode: str, device: torch.device) -> None:
    """Time `args.iters` optimiser steps of one mode on one device (after one untimed step)."""
    torch.manual_seed(0)
    model, cfg = random_classifier(args.preset, mode, args.classes, {"beats.pooling": "attentive"})
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg))
    amp_dtype = resolve_amp("auto", device)
    frames = num_frames(int(args.seconds * SAMPLE_RATE))
    generator = torch.Generator(device=device).manual_seed(0)
    fbank = torch.randn(args.batch, frames, 128, device=device, generator=generator)
    mask = torch.zeros(args.batch, frames, dtype=torch.bool, device=device)
    labels = torch.arange(args.batch, device=device) % args.classes
    sync = device_sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        with autocast(device, amp_dtype):
            losses, _ = model(fbank, mask, labels)
        losses.float().mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()
    sync()
    times = []
    for _ in range(args.iters):
        began = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - began)
    prefix = f"{device.type}_{mode}_"
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    report(f"{prefix}train_step_seconds", min(times), "s")
    report(f"{prefix}train_step_seconds_median", statistics.median(times), "s")
    report(f"{prefix}train_clips_per_s", args.batch / min(times), "clips/s")
    report(f"{prefix}trainable_parameters", trainable / 1e6, "M")
    if device.type == "cuda":
        report(f"{prefix}peak_memory", torch.cuda.max_memory_allocated(device) / 2**20, "MiB")
    else:
        report(f"{prefix}peak_rss", peak_rss_mib(), "MiB")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="full", help="architecture preset: full or tiny (default full)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated modes (default {','.join(MODES)})")
    parser.add_argument("--batch", type=int, default=2, help="clips per step (default 2)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (default 10)")
    parser.add_argument("--iters", type=int, default=2, help="timed steps; the best is the headline (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    parser.add_argument("--classes", type=int, default=50, help="classes of the margin head (default 50)")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU even if CUDA is available")
    parser.add_argument("--device", help=argparse.SUPPRESS)  # set for the per-mode child processes
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(level="WARNING")
    modes = [m for m in args.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown or args.batch < 1 or args.iters < 1 or args.threads < 1:
        raise SystemExit(
            f"--modes must name {', '.join(MODES)} (got {', '.join(unknown) or args.modes}); "
            "--batch, --iters and --threads must be positive"
        )
    if args.device:  # a child: one mode on one device, in a fresh process so its peak memory is its own
        torch.set_num_threads(args.threads)
        benchmark_mode(args, modes[0], torch.device(args.device))
        return 0
    report("load_average_1min_before", os.getloadavg()[0], "runnable")
    report("threads", args.threads, "threads")
    report("batch", args.batch, "clips")
    report("clip_seconds", args.seconds, "s")
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.no_gpu else [])
    if len(devices) * len(modes) == 1:  # one measurement: this process's peak memory is already its own
        torch.set_num_threads(args.threads)
        benchmark_mode(args, modes[0], torch.device(devices[0]))
        report("load_average_1min_after", os.getloadavg()[0], "runnable")
        return 0
    base = [
        sys.executable,
        "-m",
        "benchmarks.beats_training",
        "--preset",
        args.preset,
        "--batch",
        str(args.batch),
        "--seconds",
        str(args.seconds),
        "--iters",
        str(args.iters),
        "--threads",
        str(args.threads),
        "--classes",
        str(args.classes),
    ]
    for device in devices:
        for mode in modes:
            done = subprocess.run(base + ["--modes", mode, "--device", device], stdout=sys.stdout, check=False)
            if done.returncode:
                return done.returncode
    report("load_average_1min_after", os.getloadavg()[0], "runnable")
    return 0


if __name__ == "__main__":
    sys.exit(main())
