"""Synthetic clips -> the DCASE 2024 development layout: file names, 16-bit WAV files, attribute tables.

Writes `<raw>/<machine>/{train,test}/<name>.wav` and `<raw>/<machine>/attributes_00.csv`; reads
nothing. Shared by the synthetic corpora (`datasets.demo_corpus`, `datasets.shift_corpus`), so both
write exactly what `datasets.filenames` and `datasets.manifest` parse.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf

ATTRIBUTE_TABLE = "attributes_00.csv"


def clip_name(domain: str, split: str, label: str, index: int, attribute_string: str, section: str = "00") -> str:
    """`section_00_source_train_normal_0000_<attribute_string>.wav`, the 2022-2025 naming scheme."""
    return f"section_{section}_{domain}_{split}_{label}_{index:04d}_{attribute_string}.wav"


def attribute_string(pairs: list[tuple[str, str]]) -> str:
    """`k1_v1_k2_v2` from attribute pairs, the order kept."""
    return "_".join(f"{key}_{value}" for key, value in pairs)


def write_wav(path: Path, wave: np.ndarray, sample_rate: int) -> None:
    """Write [samples] float audio in [-1, 1] as mono 16-bit PCM, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sample_rate, subtype="PCM_16")


def write_attribute_table(machine_dir: Path, rows: list[list[str]]) -> None:
    """Write `attributes_00.csv`: `file_name,d1p,d1v,...` with as many pairs as the widest row.

    Args:
        rows: `[<machine>/<split>/<name>, key1, value1, key2, value2, ...]` per clip, any order
            (written sorted); a row may carry fewer pairs (none for anonymous evaluation clips).
    """
    pairs = max((len(row) - 1) // 2 for row in rows)
    header = ["file_name"] + [f"d{i}{part}" for i in range(1, pairs + 1) for part in ("p", "v")]
    with (machine_dir / ATTRIBUTE_TABLE).open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(sorted(rows))
