"""Clips -> features (log-mel spectrograms, or another kind), computed once in parallel worker
processes and cached on disk.

Reads WAV files; writes `<data.cache_dir>/<key>/<folder hash>/<clip>/<kind>.npy` (`log_mel.npy`,
`spectrum.npy`, `modulation.npy`, `impulsiveness.npy`), where `key` hashes the whole configuration
of the feature kind (for log-mels every `feature` key; for the others their number of bands), the
sample rate, the channel and
the extractor version, so a changed parameter never reuses stale features, and beside it
`wav_stamp.txt`, the stamp of the WAV file the features were computed from (`source_stamp`): an
entry whose stamp no longer matches its WAV file is recomputed and overwritten.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from logging.handlers import QueueHandler, QueueListener
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.atomic import atomic_path, write_text
from core.config import DataConfig, FeatureConfig, fingerprint
from datasets.audio import AudioError, read_clip, usable_indices
from datasets.clip_features import CLIP_FEATURES_VERSION, impulsiveness, modulation_spectrum
from datasets.features import EXTRACTOR_VERSION, SPECTRUM_VERSION, log_mel_spectrogram, log_spectrum
from datasets.manifest import Clip


@dataclass(frozen=True)
class LogMel:
    """The log-mel spectrogram kind: `[frames, n_mels]` per clip."""

    feature: FeatureConfig
    file_name = "log_mel.npy"

    def settings(self) -> dict:
        return {"feature": asdict(self.feature), "extractor": EXTRACTOR_VERSION}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return log_mel_spectrogram(wave, sample_rate, self.feature)


@dataclass(frozen=True)
class Spectrum:
    """The whole-clip log power spectrum kind: `[bins]` per clip."""

    bins: int
    file_name = "spectrum.npy"

    def settings(self) -> dict:
        return {"spectrum_bins": self.bins, "extractor": f"spectrum-{SPECTRUM_VERSION}"}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return log_spectrum(wave, self.bins)


@dataclass(frozen=True)
class Modulation:
    """The band envelopes' modulation spectra: `[bands * MODULATION_BINS]` per clip."""

    bands: int
    file_name = "modulation.npy"

    def settings(self) -> dict:
        return {"modulation_bands": self.bands, "extractor": f"clip-features-{CLIP_FEATURES_VERSION}"}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return modulation_spectrum(wave, sample_rate, self.bands)


@dataclass(frozen=True)
class Impulsiveness:
    """Kurtosis and crest factor of the clip and of each band: `[2 * (bands + 1)]` per clip."""

    bands: int
    file_name = "impulsiveness.npy"

    def settings(self) -> dict:
        return {"impulsiveness_bands": self.bands, "extractor": f"clip-features-{CLIP_FEATURES_VERSION}"}

    def __call__(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        return impulsiveness(wave, sample_rate, self.bands)


FeatureKind = LogMel | Spectrum | Modulation | Impulsiveness


def kind_key(data_cfg: DataConfig, kind: FeatureKind) -> str:
    """The cache key of a feature kind: a hash of everything that changes its features."""
    return fingerprint({**kind.settings(), "sample_rate": data_cfg.sample_rate, "channel": data_cfg.channel})


def feature_key(data_cfg: DataConfig, feature_cfg: FeatureConfig) -> str:
    """The cache key of the log-mel spectrograms."""
    return kind_key(data_cfg, LogMel(feature_cfg))


def cache_path(clip: Clip, cache_root: Path, file_name: str = LogMel.file_name) -> Path:
    """Where one clip's features are cached (clips of different datasets share file names); a
    folder per clip keeps the listings that atomic writes make to clean up after killed runs short."""
    folder = hashlib.sha1(str(clip.path.resolve().parent).encode()).hexdigest()[:12]
    return cache_root / folder / clip.path.stem / file_name


def stamp_path(target: Path) -> Path:
    """The file beside a cache entry that holds the stamp of the WAV file it was computed from."""
    return target.with_name("wav_stamp.txt")


def source_stamp(path: Path) -> str | None:
    """What tells a WAV file's content apart without reading it: size, modification and change
    times (ns) and inode; None if the file cannot be looked at (decoding will then say why).

    The modification time alone is not enough: `cp -p`, `rsync -a` and unzip set it back to the
    original's. Nothing sets the change time back (the kernel sets it to the current time on
    every write and every change of the other times), and rsync and unzip write a new inode.
    Reading the file instead (a content hash) would cost ~0.25 ms per 10 s clip on every run,
    ~2 s for a DCASE run of 8000 clips in the page cache and far more from disk, against ~20 ms
    for these stats.
    """
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ctime_ns} {st.st_ino}"


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
        kind: what to compute (`LogMel(feature_cfg)`, `Spectrum(bins)`, `Modulation(bands)`, ...).
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
    targets = [cache_path(c, root, kind.file_name) for c in clips]
    stamps = [source_stamp(c.path) for c in clips]
    todo = [i for i, (t, stamp) in enumerate(zip(targets, stamps)) if not _fresh(t, stamp)]
    errors: dict[int, str] = {}
    if todo:
        jobs = [(str(clips[i].path), str(targets[i]), stamps[i], data_cfg, kind, expected_channels) for i in todo]
        workers = max(1, min(data_cfg.workers, len(jobs)))
        results = _run(jobs, workers, desc)
        errors = {i: msg for i, msg in zip(todo, results) if msg is not None}
    kept = usable_indices(len(clips), errors, data_cfg.on_bad_file, allow_skip)
    return [clips[i] for i in kept], [np.load(targets[i], mmap_mode="r" if mmap else None) for i in kept]


def _fresh(target: Path, stamp: str | None) -> bool:
    try:
        return stamp_path(target).read_text() == stamp and target.is_file()
    except FileNotFoundError:
        return False


def _run(jobs: list[tuple], workers: int, desc: str) -> list[str | None]:
    if workers == 1:
        return [_extract(*job) for job in tqdm(jobs, desc=desc, unit="clip")]
    # Not plain fork: forking a process that already ran torch's thread pool can deadlock. The
    # forkserver starts clean once, imports the extractor once, and forks workers cheaply from it.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["datasets.feature_cache"])
    # The workers' log records (a truncated or silent clip) go through a queue to this process's
    # handlers: the console and the run's log file.
    records = context.Queue()
    listener = QueueListener(records, _ToLocalLoggers())
    listener.start()
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_worker,
            initargs=(records, logging.getLogger().getEffectiveLevel()),
        ) as pool:
            return list(tqdm(pool.map(_extract_job, jobs, chunksize=16), total=len(jobs), desc=desc, unit="clip"))
    finally:
        listener.stop()


class _ToLocalLoggers(logging.Handler):
    """Hands a record from a worker to the logger of the same name here, as if logged here."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger(record.name).handle(record)


def _init_worker(records: multiprocessing.Queue, level: int) -> None:
    import torch

    torch.set_num_threads(1)
    # The bare message: the parent's handlers add time, level and logger name.
    logging.basicConfig(level=level, format="%(message)s", handlers=[QueueHandler(records)], force=True)


def _extract_job(job: tuple) -> str | None:
    return _extract(*job)


def _extract(
    path: str, target: str, stamp: str | None, data_cfg: DataConfig, kind: FeatureKind, expected_channels: int | None
) -> str | None:
    """Compute and store one clip's features and the stamp its WAV file had before it was read;
    return an error message instead of raising, so the parent can name every broken file."""
    try:
        wave = read_clip(Path(path), data_cfg.sample_rate, data_cfg.channel, expected_channels)
    except AudioError as e:
        return str(e)
    features = kind(wave, data_cfg.sample_rate)
    with atomic_path(Path(target)) as tmp, tmp.open("wb") as f:
        np.save(f, features)
    # The stamp goes last: a run killed before it leaves the stamp of an older content (or none),
    # which the WAV file no longer matches, so the entry is recomputed, never trusted. A file
    # changed while it was read leaves the stamp from before, which it no longer matches either.
    if stamp is not None:
        write_text(stamp_path(Path(target)), stamp)
    return None
