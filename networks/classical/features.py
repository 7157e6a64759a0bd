"""The classical system's feature groups (`classical.features`): which cached feature kind each
group reads, and how it becomes one vector per clip. Reads clips through the feature cache;
writes nothing else.

- logmel_stats: statistics over time of each log-mel band (`classical.statistics`), [n_mels * statistics];
- modulation: each band envelope's modulation spectrum, [bands * 12] (`datasets.clip_features`);
- impulsiveness: kurtosis and crest factor of the clip and of each band, [2 * (bands + 1)];
- long_term_spectrum: the whole clip's log power spectrum in `classical.spectrum_bins` bands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.config import ClassicalConfig, FeatureConfig
from datasets.feature_cache import FeatureKind, Impulsiveness, LogMel, Modulation, Spectrum, cached_features
from datasets.manifest import Clip
from networks.system import Runtime

log = logging.getLogger(__name__)

STATISTICS = {
    "mean": lambda x: x.mean(axis=0),
    "std": lambda x: x.std(axis=0),
    "max": lambda x: x.max(axis=0),
    "min": lambda x: x.min(axis=0),
    "median": lambda x: np.median(x, axis=0),
}


def clip_statistics(log_mel: np.ndarray, statistics: list[str]) -> np.ndarray:
    """[n_mels * len(statistics)] summary of one [frames, n_mels] log-mel spectrogram."""
    return np.concatenate([STATISTICS[s](log_mel) for s in statistics]).astype(np.float32)


@dataclass(frozen=True)
class FeatureGroup:
    kind: Callable[[ClassicalConfig, FeatureConfig], FeatureKind]  # what the cache computes per clip
    vector: Callable[[np.ndarray, ClassicalConfig], np.ndarray]  # cached features -> [dim]


FEATURE_GROUPS: dict[str, FeatureGroup] = {
    "logmel_stats": FeatureGroup(
        lambda settings, feature: LogMel(feature), lambda x, settings: clip_statistics(x, settings.statistics)
    ),
    "modulation": FeatureGroup(lambda settings, feature: Modulation(settings.bands), lambda x, settings: x),
    "impulsiveness": FeatureGroup(lambda settings, feature: Impulsiveness(settings.bands), lambda x, settings: x),
    "long_term_spectrum": FeatureGroup(
        lambda settings, feature: Spectrum(settings.spectrum_bins), lambda x, settings: x
    ),
}


def group_vectors(
    clips: list[Clip], runtime: Runtime, settings: ClassicalConfig, feature: FeatureConfig, training: bool
) -> tuple[list[Clip], list[np.ndarray]]:
    """Each feature group's vectors of `clips`, from the feature cache.

    A training clip that cannot be read is dropped (under `data.on_bad_file: skip`) from every
    group; a test clip that cannot be read raises `datasets.audio.AudioError`.

    Returns:
        The clips kept, and per group of `settings.features` its [kept clips, dim] float32 vectors.
    """
    kept, groups = clips, []
    for name in settings.features:
        group = FEATURE_GROUPS[name]
        kept, features = cached_features(
            kept,
            runtime.data,
            group.kind(settings, feature),
            runtime.expected_channels,
            allow_skip=training,
            desc=f"{name} ({'train' if training else 'test'})",
        )
        if name == "logmel_stats":
            _warn_short(kept, features, feature)
        groups.append((kept, np.stack([group.vector(x, settings) for x in features])))
    # each group reads only the clips the previous ones kept: the last list is in all of them
    final = set(kept)
    return kept, [vectors[[c in final for c in group_clips]] for group_clips, vectors in groups]


def _warn_short(clips: list[Clip], log_mels: list[np.ndarray], feature: FeatureConfig) -> None:
    # A clip shorter than one analysis window has only padded frames: its statistics describe
    # the padding more than the sound. It still gets a score (a submission needs one), with a warning.
    window_frames = feature.n_fft // feature.hop_length
    for clip, x in zip(clips, log_mels):
        if len(x) <= window_frames:
            log.warning(
                "%s: %d frames, shorter than one %d-sample analysis window (feature.n_fft): its clip "
                "statistics are unreliable",
                clip.path,
                len(x),
                feature.n_fft,
            )
