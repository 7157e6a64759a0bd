"""Measure an autoencoder system end to end on one DCASE-sized machine type.

    python -m benchmarks.autoencoder --workdir exp/benchmark_ae --epochs 10 --network dense

Reads (or first writes) a synthetic corpus of one machine type under `<workdir>/corpus`
(`--train-clips` normal training clips, 1% of them target domain, and `--test-clips` test clips
of `--seconds` each, from `datasets.demo_corpus`), or the corpus given by `--corpus`. Runs the
real drivers, `tools.train` and `tools.test` (every scorer of the network: mse, mahala, and elbo for
the vae), with the network `--network` (`autoencoder.network`), a fresh feature cache, models
and results under `<workdir>/run-<time>/`. Writes `name value unit` lines on stdout:

- feature_extraction_train / _test: clips/s of the cold feature extraction (worker processes);
- train_epoch_mean / _median / _min: seconds per epoch (from the model's own loss history);
- train_total: seconds for the whole training of the machine type, feature extraction included;
- score_<scorer>: clips/s of `02_test.sh` with cached features (load the model, score,
  fit the gamma threshold, write the submission files and metrics);
- test_<scorer>_cold: seconds to test 200 clips from the WAV files (cold feature
  extraction + the scoring run);
- peak_pss_tree: peak resident memory of this process and its feature workers together, as
  proportional set size (a page shared by k processes counts 1/k in each), read near RSS peaks;
  peak_rss_tree: plain resident set sizes summed every 50 ms, which counts the shared PyTorch
  libraries once per process and so overestimates; peak_rss_main: the main process alone (getrusage);
- official_score_<scorer>: the official score on the synthetic test clips;
- load_average_before / _after and matmul_gflops (one-thread float32 matmul, this moment), so a
  figure from a shared or throttled machine can be judged.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

from benchmarks.common import peak_rss_mib, report
from core.runtime import setup_logging
from networks.autoencoder.networks import NETWORKS

log = logging.getLogger("benchmark")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.autoencoder", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, default=Path("exp/benchmark_ae"), help="corpus and runs (default: exp/benchmark_ae)"
    )
    parser.add_argument("--corpus", type=Path, help="an existing corpus (data root) instead of the generated one")
    parser.add_argument(
        "--machine", default="SynthFan", help="synthetic machine type to generate and use (default: SynthFan)"
    )
    parser.add_argument("--train-clips", type=int, default=1000, help="training clips (default: 1000, as DCASE)")
    parser.add_argument("--test-clips", type=int, default=200, help="test clips (default: 200, as DCASE)")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default: 10)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument(
        "--network", choices=list(NETWORKS), default="dense", help="autoencoder.network (default: dense)"
    )
    parser.add_argument("--threads", type=int, default=None, help="autoencoder.threads (default: baseline.yaml)")
    parser.add_argument("--workers", type=int, default=None, help="data.workers (default: baseline.yaml)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (models, results, feature cache)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    setup_logging(level="INFO")
    corpus = args.corpus or ensure_corpus(
        args.workdir / "corpus", args.machine, args.train_clips, args.test_clips, args.seconds
    )
    run = args.workdir / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    common = [
        "-d",
        "--system",
        "autoencoder",
        "--data-root",
        str(corpus),
        "--device",
        args.device,
        "--autoencoder.epochs",
        str(args.epochs),
        "--autoencoder.network",
        args.network,
        "--run.model_dir",
        str(run / "models"),
        "--run.result_dir",
        str(run / "results"),
        "--data.cache_dir",
        str(run / "cache"),
    ]
    if args.corpus is None:
        common += ["--machines", args.machine]
    if args.threads is not None:
        common += ["--autoencoder.threads", str(args.threads)]
    if args.workers is not None:
        common += ["--data.workers", str(args.workers)]

    figures: list[tuple[str, float, str]] = [
        ("load_average_before", os.getloadavg()[0], "load"),
        ("matmul_gflops", matmul_gflops(), "GFLOP/s"),
    ]
    sampler = TreeMemorySampler().start()
    try:
        figures += measure(common, run)
    finally:
        sampler.stop()
    figures += [
        ("peak_pss_tree", sampler.peak_pss / 2**20, "MiB"),
        ("peak_rss_tree", sampler.peak_rss / 2**20, "MiB"),
        ("peak_rss_main", peak_rss_mib(), "MiB"),
        ("load_average_after", os.getloadavg()[0], "load"),
    ]
    for figure in figures:
        report(*figure)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return 0


def measure(common: list[str], run: Path) -> list[tuple[str, float, str]]:
    """Train and test through the real drivers; return the figures."""
    from core.cli import parse_command_line
    from core.layout import model_root
    from datasets.feature_cache import cached_log_mels
    from datasets.manifest import open_dataset
    from networks.autoencoder.system import MODEL_FILE, AutoencoderSystem
    from networks.registry import available_scorers
    from tools import test as test_driver
    from tools import train as train_driver

    _, cfg = parse_command_line(train_driver.get_parser(), common)
    dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
    train_clips = [c for m in dataset.machines for c in dataset.clips(m, "train")]
    test_clips = [c for m in dataset.machines for c in dataset.clips(m, "test")]
    figures = []

    began = time.perf_counter()
    cached_log_mels(
        train_clips,
        cfg.data,
        cfg.feature,
        dataset.expected_channels,
        allow_skip=True,
        desc="log-mel (train)",
        mmap=True,
    )
    train_features = time.perf_counter() - began
    figures.append(("feature_extraction_train", len(train_clips) / train_features, "clips/s"))
    began = time.perf_counter()
    if train_driver.main(common) != 0:
        raise RuntimeError("training failed; see the log above")
    figures.append(("train_total", train_features + time.perf_counter() - began, "s"))
    seconds = []
    for machine in dataset.machines:
        state = torch.load(model_root(cfg) / machine / MODEL_FILE, map_location="cpu", weights_only=True)
        seconds += [h["seconds"] for h in state["history"]]
    figures += [
        ("train_epoch_mean", statistics.mean(seconds), "s/epoch"),
        ("train_epoch_median", statistics.median(seconds), "s/epoch"),
        ("train_epoch_min", min(seconds), "s/epoch"),
    ]

    began = time.perf_counter()
    cached_log_mels(
        test_clips, cfg.data, cfg.feature, dataset.expected_channels, allow_skip=False, desc="log-mel (test)", mmap=True
    )
    test_features = time.perf_counter() - began
    figures.append(("feature_extraction_test", len(test_clips) / test_features, "clips/s"))
    for scorer in available_scorers(AutoencoderSystem, cfg.autoencoder):
        began = time.perf_counter()
        if test_driver.main(common + ["--score", scorer]) != 0:
            raise RuntimeError(f"scoring with {scorer} failed; see the log above")
        took = time.perf_counter() - began
        figures += [
            (f"score_{scorer}", len(test_clips) / took, "clips/s"),
            (f"test_{scorer}_cold", test_features + took, "s"),
            (
                f"official_score_{scorer}",
                official_score(run / "results" / "dev_data" / f"autoencoder_{scorer}"),
                "score",
            ),
        ]
    return figures


def ensure_corpus(out: Path, machine: str, train_clips: int, test_clips: int, seconds: float) -> Path:
    """Write one synthetic machine type in the DCASE layout unless it is already there; 1% of
    the training clips (at least one) are target domain, as in DCASE's 990 + 10."""
    from datasets.demo_corpus import DEV_MACHINES, CorpusSize, write_machine

    by_name = {m.name: m for m in DEV_MACHINES}
    if machine not in by_name:
        raise SystemExit(f"unknown synthetic machine {machine!r}; valid: {', '.join(by_name)}")
    target = max(1, train_clips // 100)
    size = CorpusSize(
        seconds=seconds, source_train=train_clips - target, target_train=target, test_per_group=test_clips // 4
    )
    raw = out / "dev_data" / "raw"
    marker = out / f".completed-{machine}-{train_clips}-{test_clips}-{seconds:g}"
    if not marker.is_file():
        log.info(
            "writing a synthetic %s corpus (%d train, %d test clips of %g s) to %s",
            machine,
            train_clips,
            test_clips,
            seconds,
            out,
        )
        shutil.rmtree(raw / machine, ignore_errors=True)
        write_machine(raw, by_name[machine], size, seed=0, anonymous_test=False)
        marker.write_text("")
    return out


def official_score(result_dir: Path) -> float:
    with (result_dir / "result.csv").open(newline="") as f:
        for row in csv.reader(f):
            if row and row[0] == "official score":
                return float(row[1])
    raise ValueError(f"no official score in {result_dir / 'result.csv'}")


def matmul_gflops(size: int = 1024, repeats: int = 5) -> float:
    """One-thread float32 matmul speed right now (best of `repeats`), to put timings in context."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - began)
    finally:
        torch.set_num_threads(before)
    return 2 * size**3 / best / 1e9


class TreeMemorySampler:
    """Samples the summed resident memory of this process and all its descendants.

    RSS is cheap to read and is sampled every `interval` seconds. PSS needs a walk of every
    page table (tens of milliseconds per process, enough to slow the run being measured), so it is
    read only when the RSS sum is near its peak so far, at most once per `pss_interval` seconds.
    """

    def __init__(self, interval: float = 0.05, pss_interval: float = 1.0) -> None:
        self.interval = interval
        self.pss_interval = pss_interval
        self.peak_rss = 0
        self.peak_pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        me = psutil.Process()
        last_pss = 0.0
        while not self._stop.is_set():
            procs = [me] + me.children(recursive=True)
            rss = sum(_safe(lambda p=p: p.memory_info().rss) for p in procs)
            self.peak_rss = max(self.peak_rss, rss)
            now = time.monotonic()
            if rss >= 0.98 * self.peak_rss and now - last_pss >= self.pss_interval:
                self.peak_pss = max(self.peak_pss, sum(_safe(lambda p=p: p.memory_full_info().pss) for p in procs))
                last_pss = now
            self._stop.wait(self.interval)


def _safe(read) -> int:
    try:
        return read()
    except psutil.Error:  # a worker that just exited
        return 0


if __name__ == "__main__":
    sys.exit(main())
