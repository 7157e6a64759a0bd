"""Time the auxiliary system's training and scoring at full size on random inputs.

    python -m benchmarks.auxiliary --clips 7000 --test-clips 1400 --epochs 1

Reads `baseline.yaml` (the `auxiliary` section: network, batch, epochs, threads) and nothing else:
the inputs are random log-mels (`--frames` x 128, 313 = 10 s) and spectra, written as `.npy`
files under a temporary folder and memory-mapped like the feature cache's, then copied once, as in
a real run. Writes `name value unit` lines on stdout:

- train_clips_per_second, train_epoch_seconds: `--epochs` epochs of the real training loop
  (`networks.auxiliary.training.train_network`: crops, mixup, margin head, AdamW, checkpoints);
- train_minutes_estimated: the configured `auxiliary.epochs` over `--clips` clips at that rate;
- embed_clips_per_second, score_seconds_estimated: whole-clip embeddings of `--test-clips` clips
  (the network's part of scoring; the scorers themselves take milliseconds);
- spectrum_clips_per_second: the clip spectrum feature of 10 s waveforms (one process);
- parameters, peak_rss_main (this process, training set included), load_average_before/_after.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import device_sync, peak_rss_mib, report
from core.config import load_config
from core.runtime import limit_threads, pick_device, setup_logging
from datasets.features import log_spectrum
from networks.auxiliary.training import (
    ClipInputs,
    amp_dtype,
    build_network,
    clip_inputs,
    embed,
    set_input_statistics,
    train_network,
)


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auxiliary", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=7000, help="training clips (default: 7 machine types x 1000)")
    parser.add_argument("--test-clips", type=int, default=1400, help="clips to embed (default: 7 x 200)")
    parser.add_argument("--frames", type=int, default=313, help="log-mel frames per clip (default: 313 = 10 s)")
    parser.add_argument("--classes", type=int, default=50, help="classes of the margin head (default: 50)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs to time (default: 1)")
    parser.add_argument("--threads", type=int, default=None, help="auxiliary.threads (default: baseline.yaml)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    return parser


def random_inputs(folder: Path, clips: int, frames: int, n_mels: int, bins: int, seed: int) -> ClipInputs:
    """`clips` random log-mels written as .npy files and memory-mapped (as the feature cache returns
    them), each copied once; random spectra `[clips, bins]`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(clips):
        path = folder / f"{i}.npy"
        np.save(path, rng.normal(-40.0, 10.0, (frames, n_mels)).astype(np.float32))
        paths.append(path)
    log_mels = [np.load(p, mmap_mode="r") for p in paths]
    spectra = list(rng.normal(-60.0, 10.0, (clips, bins)).astype(np.float32))
    return clip_inputs(log_mels, spectra)


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging()
    overrides = {} if args.threads is None else {"auxiliary.threads": args.threads}
    cfg = load_config(overrides=overrides).auxiliary
    device = pick_device(args.device)
    sync = device_sync(device)
    n_mels = load_config().feature.n_mels
    report("load_average_before", os.getloadavg()[0], "load")
    with tempfile.TemporaryDirectory() as tmp, limit_threads(cfg.threads):
        began = time.perf_counter()
        waves = np.random.default_rng(0).standard_normal((20, 160000)).astype(np.float32)
        for wave in waves:
            log_spectrum(wave, cfg.spectrum_bins)
        report("spectrum_clips_per_second", len(waves) / (time.perf_counter() - began), "clips/s")

        inputs = random_inputs(Path(tmp) / "train", args.clips, args.frames, n_mels, cfg.spectrum_bins, 1).to(device)
        network = build_network(cfg, n_mels, cfg.spectrum_bins, args.classes, seed=0)
        set_input_statistics(network, inputs)
        report("parameters", sum(p.numel() for p in network.parameters()), "parameters")
        targets = np.arange(args.clips) % args.classes
        began = time.perf_counter()
        train_network(
            network,
            dataclasses.replace(cfg, epochs=args.epochs),
            inputs,
            targets,
            device,
            Path(tmp) / "model",
            "benchmark",
            0,
        )
        sync()
        seconds = (time.perf_counter() - began) / args.epochs
        report("train_epoch_seconds", seconds, "s")
        report("train_clips_per_second", args.clips / seconds, "clips/s")
        report("train_minutes_estimated", cfg.epochs * seconds / 60, "min")
        del inputs

        test = random_inputs(Path(tmp) / "test", args.test_clips, args.frames, n_mels, cfg.spectrum_bins, 2).to(device)
        began = time.perf_counter()
        embed(network, test, device, cfg.batch_size, amp_dtype(cfg.amp, device), "embeddings")
        sync()
        seconds = time.perf_counter() - began
        report("embed_clips_per_second", args.test_clips / seconds, "clips/s")
        report("score_seconds_estimated", seconds, "s")
    report("peak_rss_main", peak_rss_mib(), "MiB")
    report("load_average_after", os.getloadavg()[0], "load")
    return 0


if __name__ == "__main__":
    sys.exit(main())
