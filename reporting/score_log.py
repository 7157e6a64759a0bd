"""The scores of new recordings (`04_score.sh`) -> one CSV, and its state file beside it.

Writes `<out>` (header `file,machine,section,modified,score,decision,threshold,percentile`, one row
per scored clip) and `<out>.state.json` (the settings the rows were scored with: model, system,
scorer, threshold quantile). A one-off run writes the whole CSV atomically; a watcher appends each
batch of rows in one `write` followed by `fsync`, so a kill leaves whole rows only (a line torn by
a power cut is cut off on the next start and its clip scored again). The CSV is the record of what
was scored: a restart reads it back and scores nothing twice.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path

from core.atomic import write_csv, write_text

log = logging.getLogger(__name__)


class ScoreLogError(RuntimeError):
    """A score CSV that cannot be continued; the message names it and says what to do."""


@dataclass(frozen=True)
class ScoreRow:
    """One scored clip."""

    file: str  # absolute path
    machine: str
    section: str
    modified: str  # the file's modification time, ISO 8601 local time to the second
    score: float  # higher = more anomalous
    decision: int  # 1: anomalous (score above the threshold)
    threshold: float  # the section's decision threshold (gamma fit to the training scores)
    percentile: float  # share of the section's training scores at or below this score, in %

    def cells(self) -> list[str]:
        return [
            self.file,
            self.machine,
            self.section,
            self.modified,
            repr(float(self.score)),
            str(int(self.decision)),
            repr(float(self.threshold)),
            f"{self.percentile:.1f}",
        ]

    @classmethod
    def from_cells(cls, cells: list[str]) -> ScoreRow:
        file, machine, section, modified, score, decision, threshold, percentile = cells
        return cls(file, machine, section, modified, float(score), int(decision), float(threshold), float(percentile))


COLUMNS = [f.name for f in fields(ScoreRow)]


def state_path(out: Path) -> Path:
    return Path(f"{out}.state.json")


def write_scores(out: Path, rows: list[ScoreRow], settings: dict) -> None:
    """Write a whole CSV and its state atomically (a one-off run)."""
    write_csv(out, [COLUMNS, *[r.cells() for r in rows]])
    write_text(state_path(out), json.dumps(settings, indent=1) + "\n")


def read_scores(out: Path) -> list[ScoreRow]:
    """The rows of a score CSV (a line torn by a power cut left out).

    Raises:
        ScoreLogError: not a CSV of this command, naming the file and line.
    """
    with Path(out).open(newline="") as f:
        text = f.read()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or lines[0] != COLUMNS:
        raise ScoreLogError(f"{out} is not a score CSV of 04_score.sh (its header is not {','.join(COLUMNS)})")
    try:
        return [ScoreRow.from_cells(cells) for cells in lines[1:]]
    except ValueError:
        line = next(i for i, cells in enumerate(lines[1:], start=2) if not _parses(cells))
        raise ScoreLogError(f"{out}: line {line} is not a row of 04_score.sh: choose another --out") from None


class ScoreLog:
    """A score CSV that a watcher appends to and continues after a restart."""

    def __init__(self, out: Path, settings: dict) -> None:
        self.out = Path(out)
        self.settings = settings

    def resume(self) -> list[ScoreRow]:
        """Open the CSV for appending: the rows scored so far (after a restart), or none (a new CSV).

        Raises:
            ScoreLogError: the CSV was scored with other settings, or is not one of ours.
        """
        state = state_path(self.out)
        if not self.out.exists():
            if state.exists():
                log.warning("%s has no CSV beside it any more: starting a new one", state)
            write_scores(self.out, [], self.settings)
            return []
        if not state.is_file():
            raise ScoreLogError(
                f"{self.out} exists but {state.name} does not: it was not written by 04_score.sh; choose another --out"
            )
        try:
            before = json.loads(state.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ScoreLogError(f"{state} is damaged: delete it and {self.out}, or choose another --out") from None
        if before != self.settings:
            changed = ", ".join(
                f"{k} {before.get(k)!r} -> {v!r}" for k, v in self.settings.items() if before.get(k) != v
            )
            raise ScoreLogError(
                f"{self.out} holds scores of other settings ({changed}): choose another --out to keep both"
            )
        rows = read_scores(self.out)
        data = self.out.read_bytes()
        whole = data.rfind(b"\n") + 1
        if whole < len(data):
            log.warning(
                "%s: its last line was cut off (a crash while writing): removed, its clip is scored again", self.out
            )
            os.truncate(self.out, whole)
        return rows

    def append(self, rows: list[ScoreRow]) -> None:
        """Add rows durably: one write, then fsync."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(r.cells() for r in rows)
        fd = os.open(self.out, os.O_WRONLY | os.O_APPEND)
        try:
            data = buffer.getvalue().encode()
            while data:  # a regular file takes it in one write; the loop only guards the rule
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def _parses(cells: list[str]) -> bool:
    try:
        ScoreRow.from_cells(cells)
    except ValueError:
        return False
    return True
