"""Measure BEATs encoder throughput against the machine's own fp32 matmul speed.

Reads: nothing (random weights from a preset, random audio).
Writes: `name value unit` lines on stdout, one per figure:
the FLOP estimate per clip, the measured fp32 matmul GFLOP/s, encoder clips/s and GFLOP/s, the
achieved fraction of matmul throughput, peak resident memory, optionally seconds per training
step, and the same on GPU when CUDA is available.

    python -m tools.benchmark_beats --batch 2 --seconds 10 --iters 3 --threads 2 --preset full

The machine may be shared: each timing is the best of `--iters` runs (the least disturbed one),
the median is printed too, and the load average before and after is reported.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import time
from typing import Callable, Optional, Sequence

import torch

from networks.beats import BEATs, BEATsConfig, build_beats, get_preset
from networks.beats.preprocess import num_frames

MATMUL_SIZE = 4096


def encoder_flops(cfg: BEATsConfig, num_samples: int) -> dict[str, float]:
    """Multiply-add FLOPs (2 per multiply-add) of one clip through the encoder, by component.

    Counted: every matmul-like operation, i.e. the patch convolution (tokens x embed_dim x p^2),
    post_extract_proj, the grouped positional convolution (tokens x C x C/groups x kernel), and
    per layer the q/k/v/out projections (4 x tokens x C^2), the attention products QK^T and AV
    (2 x tokens^2 x C), the FFN (2 x tokens x C x ffn) and the gate projection (tokens x C x 8).
    Not counted: fbank, softmax, LayerNorm, GELU and other element-wise work (memory-bound,
    a few percent of the time). For a 10 s clip of the full model: 496 tokens, ~98.6 GFLOP in
    total, of which ~93.3 GFLOP are the 12 transformer layers.
    """
    patch = cfg.input_patch_size
    tokens = (num_frames(num_samples) // patch) * (128 // patch)
    width, ffn, layers = cfg.encoder_embed_dim, cfg.encoder_ffn_embed_dim, cfg.encoder_layers
    macs = {
        "patch_embedding": tokens * cfg.embed_dim * patch * patch,
        "post_extract_proj": tokens * cfg.embed_dim * width if cfg.embed_dim != width else 0,
        "pos_conv": tokens * width * (width // cfg.conv_pos_groups) * cfg.conv_pos,
        "layers": layers
        * (
            4 * tokens * width * width
            + 2 * tokens * tokens * width
            + 2 * tokens * width * ffn
            + (tokens * width * 8 if cfg.gru_rel_pos else 0)
        ),
    }
    flops = {name: 2.0 * value for name, value in macs.items()}
    flops["total"] = sum(flops.values())
    return flops


def _timings(fn: Callable[[], object], iters: int, sync: Callable[[], None]) -> list[float]:
    """Wall-clock seconds of `iters` calls of `fn`, after one untimed warm-up call."""
    fn()
    sync()
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return times


def matmul_gflops(device: torch.device, iters: int, sync: Callable[[], None]) -> float:
    """Best fp32 GFLOP/s of a large square matmul, the machine's practical ceiling."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, generator=generator)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, generator=generator)
    out = torch.empty_like(a)
    with torch.inference_mode():
        best = min(_timings(lambda: torch.mm(a, b, out=out), iters, sync))
    return 2.0 * MATMUL_SIZE**3 / best / 1e9


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.4g} {unit}", flush=True)


def benchmark_device(
    model: BEATs,
    device: torch.device,
    args: argparse.Namespace,
    flops_per_clip: float,
    prefix: str,
    autocast_dtype: Optional[torch.dtype] = None,
) -> None:
    """Matmul ceiling, encoder inference (and optionally a training step) on one device."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    generator = torch.Generator(device=device).manual_seed(0)
    samples = int(args.seconds * 16000)
    wave = 0.1 * torch.randn(args.batch, samples, device=device, generator=generator)
    model = model.to(device)

    def infer() -> object:
        with torch.inference_mode(), torch.autocast(
            device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
        ):
            return model.extract_features(wave)

    model.eval()
    if autocast_dtype is None:
        # Matmul before and after the encoder, so a burst of load from other work hits both.
        ceiling = matmul_gflops(device, 3, sync)
        times = _timings(infer, args.iters, sync)
        ceiling = max(ceiling, matmul_gflops(device, 3, sync))
    else:
        times = _timings(infer, args.iters, sync)

    best, median = min(times), statistics.median(times)
    achieved = flops_per_clip * args.batch / best / 1e9
    report(f"{prefix}encoder_clips_per_s", args.batch / best, "clips/s")
    report(f"{prefix}encoder_clips_per_s_median", args.batch / median, "clips/s")
    report(f"{prefix}encoder_seconds_per_batch", best, "s")
    report(f"{prefix}encoder_achieved", achieved, "GFLOP/s")
    if autocast_dtype is None:
        # Only meaningful against a matmul of the same precision.
        report(f"{prefix}matmul_fp32", ceiling, "GFLOP/s")
        report(f"{prefix}encoder_fraction_of_matmul", achieved / ceiling, "ratio")

    if args.train:
        model.train()
        # Layer drop would make steps skip work at random; time the full network.
        cfg_layerdrop = model.cfg.encoder_layerdrop
        model.cfg.encoder_layerdrop = 0.0

        def step() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(
                device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
            ):
                features, _ = model.extract_features(wave)
            features.float().pow(2).mean().backward()

        train_times = _timings(step, max(1, args.iters), sync)
        model.cfg.encoder_layerdrop = cfg_layerdrop
        report(f"{prefix}train_step_seconds", min(train_times), "s")
        model.eval()

    if device.type == "cuda":
        report(f"{prefix}peak_memory", torch.cuda.max_memory_allocated(device) / 2**20, "MiB")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2, help="clips per forward pass (default 2, the fastest per clip on a 2-core CPU)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (default 10)")
    parser.add_argument("--iters", type=int, default=3, help="timed passes; the best one is reported (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    parser.add_argument("--preset", default="full", help="architecture preset: full or tiny (default full)")
    parser.add_argument("--train", action="store_true", help="also time a forward+backward training step")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU measurements even if CUDA is available")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.batch < 1 or args.iters < 1 or args.threads < 1:
        raise SystemExit("--batch, --iters and --threads must be positive")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = get_preset(args.preset)
    flops = encoder_flops(cfg, int(args.seconds * 16000))
    report("load_average_1min_before", os.getloadavg()[0], "runnable")
    report("threads", args.threads, "threads")
    report("batch", args.batch, "clips")
    report("encoder_flops_per_clip", flops["total"] / 1e9, "GFLOP")
    report("encoder_flops_per_clip_layers_only", flops["layers"] / 1e9, "GFLOP")

    model = build_beats(cfg)  # random weights: speed does not depend on them
    benchmark_device(model, torch.device("cpu"), args, flops["total"], prefix="cpu_")
    report("cpu_peak_rss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB")

    if torch.cuda.is_available() and not args.no_gpu:
        device = torch.device("cuda")
        benchmark_device(model, device, args, flops["total"], prefix="cuda_fp32_")
        benchmark_device(model, device, args, flops["total"], prefix="cuda_bf16_", autocast_dtype=torch.bfloat16)
    report("load_average_1min_after", os.getloadavg()[0], "runnable")


if __name__ == "__main__":
    main()
