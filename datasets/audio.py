"""WAV file -> one channel of float32 samples, checked against what the dataset promises.

Reads audio with soundfile (libsndfile); writes nothing.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

log = logging.getLogger(__name__)

# libsndfile reads a WAV cut short (an interrupted copy or download) without an error, as far as
# it goes; only its header log tells, e.g. "data : 32000 (should be 22000)".
_SHORT_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+) \(should be (\d+)\)", re.MULTILINE)
_UNKNOWN_LENGTH = 0xFFFFFFFF  # what a writer streaming to a pipe leaves in the header: not a truncation
NAMED_ODD_CLIPS = 10  # how many clips with an odd channel count one warning names


class AudioError(RuntimeError):
    """A clip that cannot be used: undecodable, wrong sample rate, unexpected channels or
    non-finite samples."""


def usable_indices(n_clips: int, problems: dict[int, str], on_bad_file: str, allow_skip: bool) -> list[int]:
    """Positions 0..n_clips-1 of the clips without a problem (position -> message naming the file).

    Broken clips stop the run with AudioError, unless they may be skipped (`allow_skip`: training
    clips; a submission needs a score for every test clip) and `data.on_bad_file` is `skip`: then
    each is logged as a warning and left out.
    """
    if problems and not (allow_skip and on_bad_file == "skip"):
        hint = " (set data.on_bad_file: skip to leave broken training clips out)" if allow_skip else ""
        raise AudioError("; ".join(problems.values()) + hint)
    for message in problems.values():
        log.warning("skipping %s", message)
    return [i for i in range(n_clips) if i not in problems]


def require_training_clips(kept: list) -> None:
    """Raise AudioError if skipping broken clips left nothing to train on."""
    if not kept:
        raise AudioError("every training clip was skipped as broken; nothing to train on")


def read_clip(path: Path, sample_rate: int, channel: int = 0, expected_channels: int | None = None) -> np.ndarray:
    """Decode one clip and return the chosen channel.

    Args:
        path: the WAV file.
        sample_rate: the rate every clip must have; no silent resampling, because a clip at
            another rate is a sign of a wrong or corrupted dataset.
        channel: which channel to return (2026 stereo clips: 0 is the legacy mono signal).
        expected_channels: the channel count the dataset promises, or None to accept any.

    Returns:
        [samples] float32 in [-1, 1]. A file shorter than its header says, or all zeros, is
        returned with a warning naming it.

    Raises:
        AudioError: naming the file and what is wrong with it.
    """
    try:
        with sf.SoundFile(str(path)) as f:
            data, rate, header_log = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise AudioError(f"{path}: cannot be decoded as audio ({e})") from None
    if rate != sample_rate:
        raise AudioError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz (data.sample_rate)")
    n_channels = data.shape[1]
    if expected_channels is not None and n_channels != expected_channels:
        raise AudioError(f"{path}: has {n_channels} channel(s), this dataset's clips have {expected_channels}")
    if not 0 <= channel < n_channels:
        raise AudioError(f"{path}: has {n_channels} channel(s), so data.channel={channel} does not exist")
    if data.shape[0] == 0:
        raise AudioError(f"{path}: holds no samples")
    wave = np.ascontiguousarray(data[:, channel])
    # Float WAVs can store NaN and Inf; one such sample turns every feature, loss and score it
    # touches into NaN, which nothing downstream reports.
    non_finite = np.count_nonzero(~np.isfinite(wave))
    if non_finite:
        raise AudioError(f"{path}: {non_finite} of its {len(wave)} samples are not finite (NaN or Inf)")
    short = _missing_data(header_log)
    if short:
        log.warning(
            "%s: truncated: its header promises %d bytes of audio, the file holds %d; only its first %.2f s are used",
            path,
            *short,
            len(wave) / rate,
        )
    if not wave.any():
        log.warning("%s: every sample is 0 (digital silence): check the recording", path)
    return wave


def _missing_data(header_log: str) -> tuple[int, int] | None:
    """(bytes promised, bytes present) of a WAV's data chunk cut short, from libsndfile's header log; else None."""
    short = _SHORT_DATA_CHUNK.search(header_log)
    if short and int(short[2]) < int(short[1]) != _UNKNOWN_LENGTH:
        return int(short[1]), int(short[2])
    return None


def is_cut_short(path: Path) -> bool:
    """Whether a WAV file holds less audio than its header promises (still being copied, or
    truncated); reads the header only. A file that cannot be opened is left for `read_clip` to name."""
    try:
        with sf.SoundFile(str(path)) as f:
            return _missing_data(f.extra_info) is not None
    except (sf.LibsndfileError, RuntimeError, ValueError):
        return False


def warn_mixed_channels(group: str, paths: list[Path]) -> None:
    """Warn, in one line naming them, about the clips whose channel count differs from most of `paths`'.

    For a dataset that promises no channel count (your own recordings), where `read_clip` takes
    `data.channel` of any clip: a stereo clip among mono ones is most likely a mistake. Reads the
    WAV headers only; a file that cannot be opened is left for `read_clip` to name.

    Args:
        group: what the clips are, for the message (a machine type).
        paths: the WAV files.
    """
    channels = {}
    for path in paths:
        try:
            channels[path] = sf.info(str(path)).channels
        except (sf.LibsndfileError, RuntimeError, ValueError):
            continue
    counts = Counter(channels.values())
    if len(counts) < 2:
        return
    usual = counts.most_common(1)[0][0]
    odd = sorted(path for path, n in channels.items() if n != usual)
    named = ", ".join(f"{path} ({channels[path]} ch)" for path in odd[:NAMED_ODD_CLIPS])
    more = f" and {len(odd) - NAMED_ODD_CLIPS} more" if len(odd) > NAMED_ODD_CLIPS else ""
    log.warning(
        "%s: mixed channel counts, most clips have %d but %d of %d do not (data.channel of each is used): %s%s",
        group,
        usual,
        len(odd),
        len(channels),
        named,
        more,
    )
