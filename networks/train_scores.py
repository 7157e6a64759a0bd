"""The training clips' scores stored beside a model (`train_scores.csv`), from which the decision
thresholds are fitted at test time.

Writes one row per training clip: machine, section, domain, name and one column per scorer
(`repr` of the float, so the values read back bit for bit). Reads them back per scorer and section.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from core.atomic import write_csv
from networks.system import ModelFileError, System

KEY_COLUMNS = ["machine", "section", "domain", "name"]


def write_train_scores(path: Path, system: System) -> None:
    """Atomically write `system.train_clips_` with `system.train_scores_` to `path`."""
    scorers = list(system.train_scores_)
    rows = [KEY_COLUMNS + scorers]
    rows += [
        [clip.machine, clip.section, clip.domain, clip.name]
        + [repr(float(system.train_scores_[s][i])) for s in scorers]
        for i, clip in enumerate(system.train_clips_)
    ]
    write_csv(path, rows)


def read_train_scores(path: Path) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """scorer -> (machine, section) -> [clips] training scores.

    Raises:
        ModelFileError: the file is missing, truncated or not a training-score table; naming it.
    """
    if not path.is_file():
        raise ModelFileError(f"training scores {path} are missing")
    by_scorer: dict[str, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    try:
        with path.open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            if header[: len(KEY_COLUMNS)] != KEY_COLUMNS or len(header) == len(KEY_COLUMNS):
                raise ValueError("not a training-score table")
            scorers = header[len(KEY_COLUMNS) :]
            for line, row in enumerate(reader, start=2):
                if len(row) != len(header):
                    raise ValueError(f"line {line} has {len(row)} fields, expected {len(header)}")
                for scorer, text in zip(scorers, row[len(KEY_COLUMNS) :]):
                    value = float(text)
                    if not np.isfinite(value):
                        raise ValueError(f"line {line} holds a non-finite {scorer} score")
                    by_scorer[scorer][(row[0], row[1])].append(value)
    except (StopIteration, ValueError, UnicodeDecodeError, csv.Error) as e:
        reason = "it is empty" if isinstance(e, StopIteration) else str(e)
        raise ModelFileError(f"training scores {path} are damaged ({reason})") from None
    if not by_scorer:
        raise ModelFileError(f"training scores {path} are damaged (no rows)")
    return {s: {key: np.array(v) for key, v in sections.items()} for s, sections in by_scorer.items()}
