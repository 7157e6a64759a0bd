"""The training clips' scores stored beside a model (`train_scores.csv`), from which the decision
thresholds are fitted at test time.

Writes one row per training clip: machine, section, domain, name and one column per scorer
(`repr` of the float, so the values read back bit for bit). Reads them back per scorer and section,
or row by row with each clip's key (to align the clips of several systems). The model folder's
`.completed` marker records the table's SHA-256 (`completion_line`): a table cut short at a row
boundary still parses, and only the digest tells.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np

from core.atomic import write_csv
from core.layout import COMPLETE_MARKER
from networks.section_banks import group_indices
from networks.system import ModelFileError, System

KEY_COLUMNS = ["machine", "section", "domain", "name"]
ClipKey = tuple[str, str, str, str]  # machine, section, domain, name
DIGEST_LABEL = "train_scores.csv sha256 "  # how the marker's line with the table's digest starts


def completion_line(path: Path) -> str:
    """The `.completed` marker's line recording the digest of the table at `path`."""
    return DIGEST_LABEL + hashlib.sha256(Path(path).read_bytes()).hexdigest() + "\n"


def _recorded_digest(path: Path) -> str | None:
    """The digest the marker beside `path` recorded when training finished; None without one
    (models trained before markers held it, or a training in progress)."""
    marker = path.parent / COMPLETE_MARKER
    lines = marker.read_text(errors="replace").splitlines() if marker.is_file() else []
    return next((line[len(DIGEST_LABEL) :] for line in lines if line.startswith(DIGEST_LABEL)), None)


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


def read_train_score_table(path: Path) -> tuple[list[ClipKey], dict[str, np.ndarray]]:
    """Each row's (machine, section, domain, name) and scorer -> [rows] scores, in file order.

    Raises:
        ModelFileError: the file is missing, truncated or not a training-score table; naming it.
    """
    if not path.is_file():
        raise ModelFileError(f"training scores {path} are missing")
    keys: list[ClipKey] = []
    columns: list[list[float]] = []
    try:
        raw = path.read_bytes()
        recorded = _recorded_digest(path)
        if recorded is not None and hashlib.sha256(raw).hexdigest() != recorded:
            raise ValueError(f"its contents differ from those recorded in {COMPLETE_MARKER} when training finished")
        text = raw.decode()
        # write_csv ends every row with a newline: a file cut short inside a row (even inside its last
        # number, which would still parse) lacks it
        if text and not text.endswith("\n"):
            raise ValueError("it ends inside a row: cut short")
        # parsed from the bytes the digest was checked on, not read a second time
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader)
        if header[: len(KEY_COLUMNS)] != KEY_COLUMNS or len(header) == len(KEY_COLUMNS):
            raise ValueError("not a training-score table")
        scorers = header[len(KEY_COLUMNS) :]
        columns = [[] for _ in scorers]
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"line {line} has {len(row)} fields, expected {len(header)}")
            for scorer, column, cell in zip(scorers, columns, row[len(KEY_COLUMNS) :]):
                value = float(cell)
                if not np.isfinite(value):
                    raise ValueError(f"line {line} holds a non-finite {scorer} score")
                column.append(value)
            keys.append((row[0], row[1], row[2], row[3]))
    except (StopIteration, ValueError, UnicodeDecodeError, csv.Error) as e:
        reason = "it is empty" if isinstance(e, StopIteration) else str(e)
        raise ModelFileError(f"training scores {path} are damaged ({reason})") from None
    if not keys:
        raise ModelFileError(f"training scores {path} are damaged (no rows)")
    return keys, {scorer: np.array(column) for scorer, column in zip(scorers, columns)}


def read_train_scores(path: Path) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """scorer -> (machine, section) -> [clips] training scores.

    Raises:
        ModelFileError: the file is missing, truncated or not a training-score table; naming it.
    """
    keys, scores = read_train_score_table(path)
    sections = group_indices((machine, section) for machine, section, _, _ in keys)
    return {scorer: {key: values[idx] for key, idx in sections.items()} for scorer, values in scores.items()}
