"""Clips -> features (log-mel spectrograms, or another kind), computed once in parallel worker
processes and cached on disk.

Reads WAV files; writes `<data.cache_dir>/<key>/<folder hash>/<clip>.npy`, where `key` hashes the
whole configuration of the feature kind (for log-mels every `feature` key; for the clip spectrum
its number of bands), the sample rate, the channel and the extractor version, so a changed
parameter never reuses stale features. A cache file older than its WAV file is recomputed.
"""
from __future__ import annotations

import hashlib
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datasets.audio import AudioError, read_clip, usable_indices
from datasets.features import EXTRACTOR_VERSION, SPECTRUM_VERSION, log_mel_spectrogram, log_spectrum
from datasets.manifest import Clip
from tools.atomic import atomic_path
from tools.config import DataConfig, FeatureConfig, fingerprint


@dataclass(frozen=True)
class LogMel:
    """The log-mel spectrogram kind: `[frames, n_mels]` per clip."""

    feature: FeatureConfig

    def settings(self) -> dict:
        return {"feature": asdict(self.feature), "extractor": EXTRACTOR_VERSION}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return log_mel_spectrogram(wave, sample_rate, self.feature)


@dataclass(frozen=True)
class Spectrum:
    """The whole-clip log power spectrum kind: `[bins]` per clip."""

    bins: int

    def settings(self) -> dict:
        return {"spectrum_bins": self.bins, "extractor": f"spectrum-{SPECTRUM_VERSION}"}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return log_spectrum(wave, self.bins)


FeatureKind = LogMel | Spectrum


def kind_key(data_cfg: DataConfig, kind: FeatureKind) -> str:
    """The cache key of a feature kind: a hash of everything that changes its features."""
    return fingerprint({**kind.settings(), "sample_rate": data_cfg.sample_rate, "channel": data_cfg.channel})


def feature_key(data_cfg: DataConfig, feature_cfg: FeatureConfig) -> str:
    """The cache key of the log-mel spectrograms."""
    return kind_key(data_cfg, LogMel(feature_cfg))


def cache_path(clip: Clip, cache_root: Path) -> Path:
    """Where one clip's features are cached (clips of different datasets share file names)."""
    folder = hashlib.sha1(str(clip.path.resolve().parent).encode()).hexdigest()[:12]
    return cache_root / folder / (clip.path.stem + ".npy")


def cached_log_mels(
    clips: list[Clip],
    data_cfg: DataConfig,
    feature_cfg: FeatureConfig,
    expected_channels: int | None,
    allow_skip: bool,
    desc: str = "features",
    mmap: bool = False,
) -> tuple[list[Clip], list[np.ndarray]]:
    """Log-mel spectrograms `[frames, n_mels]` of `clips`, from the cache where possible; the
    arguments and results are those of `cached_features`."""
    return cached_features(clips, data_cfg, LogMel(feature_cfg), expected_channels, allow_skip, desc, mmap)


def cached_features(
    clips: list[Clip],
    data_cfg: DataConfig,
    kind: FeatureKind,
    expected_channels: int | None,
    allow_skip: bool,
    desc: str = "features",
    mmap: bool = False,
) -> tuple[list[Clip], list[np.ndarray]]:
    """Features of one kind of `clips`, from the cache where possible.

    Args:
        clips: the clips, in the order wanted.
        data_cfg: the `data` configuration section.
        kind: what to compute (`LogMel(feature_cfg)`, `Spectrum(bins)`).
        expected_channels: channel count the dataset promises, or None to accept any.
        allow_skip: whether `data.on_bad_file: skip` may drop a broken clip (training clips);
            broken test clips always raise, because a submission needs a score for every clip.
        mmap: return read-only memory maps of the cache files instead of arrays in memory, for
            a caller that copies them into one array of its own and must not hold them twice.

    Returns:
        The clips kept and their float32 features, in input order.

    Raises:
        AudioError: a clip cannot be used and may not be skipped; the message names the file.
    """
    root = Path(data_cfg.cache_dir) / kind_key(data_cfg, kind)
    targets = [cache_path(c, root) for c in clips]
    todo = [i for i, (c, t) in enumerate(zip(clips, targets)) if not _fresh(t, c.path)]
    errors: dict[int, str] = {}
    if todo:
        jobs = [(str(clips[i].path), str(targets[i]), data_cfg, kind, expected_channels) for i in todo]
        workers = max(1, min(data_cfg.workers, len(jobs)))
        results = _run(jobs, workers, desc)
        errors = {i: msg for i, msg in zip(todo, results) if msg is not None}
    kept = usable_indices(len(clips), errors, data_cfg.on_bad_file, allow_skip)
    return [clips[i] for i in kept], [np.load(targets[i], mmap_mode="r" if mmap else None) for i in kept]


def _fresh(target: Path, source: Path) -> bool:
    try:
        return target.stat().st_mtime_ns >= source.stat().st_mtime_ns
    except FileNotFoundError:
        return False


def _run(jobs: list[tuple], workers: int, desc: str) -> list[str | None]:
    if workers == 1:
        return [_extract(*job) for job in tqdm(jobs, desc=desc, unit="clip")]
    # Not plain fork: forking a process that already ran torch's thread pool can deadlock. The
    # forkserver starts clean once, imports the extractor once, and forks workers cheaply from it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["datasets.feature_cache"])
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        return list(tqdm(pool.map(_extract_job, jobs, chunksize=16), total=len(jobs), desc=desc, unit="clip"))


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _extract_job(job: tuple) -> str | None:
    return _extract(*job)


def _extract(path: str, target: str, data_cfg: DataConfig, kind: FeatureKind,
             expected_channels: int | None) -> str | None:
    """Compute and store one clip's features; return an error message instead of raising, so
    the parent can name every broken file."""
    try:
        wave = read_clip(Path(path), data_cfg.sample_rate, data_cfg.channel, expected_channels)
    except AudioError as e:
        return str(e)
    features = kind(wave, data_cfg.sample_rate)
    with atomic_path(Path(target)) as tmp, tmp.open("wb") as f:
        np.save(f, features)
    return None
