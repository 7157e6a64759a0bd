"""Measure BEATs encoder throughput against the machine's own fp32 matmul speed.

Reads: nothing (random weights from a preset, random audio).
Writes: `name value unit` lines on stdout, one per figure:
the FLOP estimate per clip, the measured fp32 matmul GFLOP/s, encoder clips/s and GFLOP/s, the
achieved fraction of matmul throughput, peak resident memory, optionally seconds per training
step, and the same on GPU when CUDA is available.

    python -m benchmarks.beats --batch 1 --seconds 10 --iters 3 --threads 2 --preset full

The machine may be shared: every encoder pass is paired with an adjacent matmul and the median
of the paired ratios is printed besides the best-of-`--iters` figures; the ratio of CPU-time
rates (time waiting for a core excluded) and the load average before and after come with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from benchmarks.common import device_sync, peak_rss_mib, report
from core.runtime import setup_logging
from datasets.fbank import (
    SAMPLE_RATE,  # BEATs' own input rate
    num_frames,
)
from networks.beats import BEATs, BEATsArchitecture, build_beats, get_preset

MATMUL_SIZE = 4096


def encoder_flops(cfg: BEATsArchitecture, num_samples: int) -> dict[str, float]:
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


def _time_once(fn: Callable[[], object], sync: Callable[[], None]) -> tuple[float, float]:
    """Wall-clock and process CPU seconds (all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    sync()
    return time.perf_counter() - wall, time.process_time() - cpu


def _matmul(device: torch.device) -> Callable[[], object]:
    """A large square fp32 matmul: the practical ceiling of this device's arithmetic."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, generator=generator)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, device=device, generator=generator)
    out = torch.empty_like(a)

    def run() -> object:
        with torch.inference_mode():
            return torch.mm(a, b, out=out)

    return run


def benchmark_device(
    model: BEATs,
    device: torch.device,
    args: argparse.Namespace,
    flops_per_clip: float,
    prefix: str,
    autocast_dtype: torch.dtype | None = None,
) -> None:
    """Matmul ceiling, encoder inference (and optionally a training step) on one device.

    Each encoder pass is timed right after a matmul, so both see the same load from other work:
    the paired ratio is robust on a shared machine, the best-of figures show the quiet case.
    """
    sync = device_sync(device)
    generator = torch.Generator(device=device).manual_seed(0)
    samples = int(args.seconds * SAMPLE_RATE)
    wave = 0.1 * torch.randn(args.batch, samples, device=device, generator=generator)
    model = model.to(device).eval()
    autocast = dict(device_type=device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None)

    def infer() -> object:
        with torch.inference_mode(), torch.autocast(**autocast):
            return model.extract_features(wave)

    infer()  # warm-up: first-call allocations, kernel selection, caches
    sync()
    if device.type == "cpu":
        # Before the matmul operands exist, so this is the model, its input and activations.
        report(f"{prefix}peak_rss_encoder", peak_rss_mib(), "MiB")
    matmul = _matmul(device)
    matmul()
    matmul_flops = 2.0 * MATMUL_SIZE**3
    encoder_flops = flops_per_clip * args.batch
    matmul_times, encoder_times = [], []
    for _ in range(args.iters):
        matmul_times.append(_time_once(matmul, sync))
        encoder_times.append(_time_once(infer, sync))
    matmul_rates = [matmul_flops / wall for wall, _ in matmul_times]
    encoder_rates = [encoder_flops / wall for wall, _ in encoder_times]
    # CPU-time rates ignore the time this process waited for a core while others ran.
    matmul_cpu_rate = max(matmul_flops / cpu for _, cpu in matmul_times)
    encoder_cpu_rate = max(encoder_flops / cpu for _, cpu in encoder_times)
    encoder_times = [wall for wall, _ in encoder_times]

    best = min(encoder_times)
    report(f"{prefix}encoder_clips_per_s", args.batch / best, "clips/s")
    report(f"{prefix}encoder_clips_per_s_median", args.batch / statistics.median(encoder_times), "clips/s")
    report(f"{prefix}encoder_seconds_per_batch", best, "s")
    report(f"{prefix}encoder_achieved", encoder_flops / best / 1e9, "GFLOP/s")
    # Against an fp32 matmul the ratio only means something for the fp32 encoder.
    if autocast_dtype is None:
        report(f"{prefix}matmul_fp32", max(matmul_rates) / 1e9, "GFLOP/s")
        report(f"{prefix}encoder_fraction_of_matmul", max(encoder_rates) / max(matmul_rates), "ratio")
        paired = [e / m for e, m in zip(encoder_rates, matmul_rates)]
        report(f"{prefix}encoder_fraction_of_matmul_paired_median", statistics.median(paired), "ratio")
        if device.type == "cpu":
            report(f"{prefix}encoder_fraction_of_matmul_cpu_time", encoder_cpu_rate / matmul_cpu_rate, "ratio")

    if args.train:
        model.train()
        # Layer drop would make steps skip work at random; time the full network.
        layerdrop = model.cfg.encoder_layerdrop
        model.cfg.encoder_layerdrop = 0.0

        def step() -> None:
            model.zero_grad(set_to_none=True)
            with torch.autocast(**autocast):
                features, _ = model.extract_features(wave)
            features.float().pow(2).mean().backward()

        step()
        train_times = [_time_once(step, sync)[0] for _ in range(args.iters)]
        model.cfg.encoder_layerdrop = layerdrop
        model.eval()
        report(f"{prefix}train_step_seconds", min(train_times), "s")

    if device.type == "cuda":
        report(f"{prefix}peak_memory", torch.cuda.max_memory_allocated(device) / 2**20, "MiB")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="clips per forward pass (default 1: on a 2-core CPU larger batches are not faster per clip)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds (default 10)")
    parser.add_argument("--iters", type=int, default=3, help="timed passes, each paired with a matmul (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default 2)")
    parser.add_argument("--preset", default="full", help="architecture preset: full or tiny (default full)")
    parser.add_argument("--train", action="store_true", help="also time a forward+backward training step")
    parser.add_argument("--no-gpu", action="store_true", help="skip the GPU measurements even if CUDA is available")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    setup_logging(level="WARNING")
    if args.batch < 1 or args.iters < 1 or args.threads < 1:
        raise SystemExit("--batch, --iters and --threads must be positive")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    cfg = get_preset(args.preset)
    flops = encoder_flops(cfg, int(args.seconds * SAMPLE_RATE))
    report("load_average_1min_before", os.getloadavg()[0], "runnable")
    report("threads", args.threads, "threads")
    report("batch", args.batch, "clips")
    report("encoder_flops_per_clip", flops["total"] / 1e9, "GFLOP")
    report("encoder_flops_per_clip_layers_only", flops["layers"] / 1e9, "GFLOP")

    model = build_beats(cfg)  # random weights: speed does not depend on them
    benchmark_device(model, torch.device("cpu"), args, flops["total"], prefix="cpu_")
    report("cpu_peak_rss_process", peak_rss_mib(), "MiB")

    if torch.cuda.is_available() and not args.no_gpu:
        device = torch.device("cuda")
        benchmark_device(model, device, args, flops["total"], prefix="cuda_fp32_")
        benchmark_device(model, device, args, flops["total"], prefix="cuda_bf16_", autocast_dtype=torch.bfloat16)
    report("load_average_1min_after", os.getloadavg()[0], "runnable")


if __name__ == "__main__":
    main()
