"""Label the anonymous evaluation test clips with the official lists (`eval_data_list_<year>.csv`).

Reads a label list: a line with one field names a machine type; the lines after it are
`anonymous_name,labelled_name` (2020 adds a third field, 0 = normal, 1 = anomaly, checked against
the labelled name and otherwise ignored). Reads `<machine>/test/*.wav` (or `source_test/` and
`target_test/`, should an evaluation zip use them). Writes, per machine type:
  - `<machine>/test_rename/<labelled name>.wav`, as the official tools do: hard links to the test clips
    where the file system allows, else copies; built in `.test_rename.tmp/` and renamed into place;
  - `<machine>/eval_labels.csv` (`anonymous_name,labelled_name` rows, no header; written atomically),
    which `datasets.manifest` reads to give the anonymous clips their domain and label.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.atomic import write_csv
from datasets.filenames import UnrecognisedFileName, parse_file_name
from datasets.manifest import EVAL_LABELS_FILE, read_eval_labels, split_dirs, wav_files

log = logging.getLogger(__name__)

RENAMED_FOLDER = "test_rename"


class LabelListError(ValueError):
    """A label list that does not follow the official format, or does not fit the clips on disk."""


@dataclass(frozen=True)
class LabelResult:
    machine: str
    clips: int
    skipped: bool  # already labelled with the same list
    linked: bool  # test_rename/ holds hard links (False: copies)


def parse_label_list(text: str, source: str = "label list") -> dict[str, list[tuple[str, str]]]:
    """Machine type -> [(anonymous name, labelled name)] in list order.

    Raises:
        LabelListError: with the line number: a row before any machine line, a name that fits no
            DCASE scheme, an anonymous name that is already labelled or a labelled one that is not,
            a 2020 label field that contradicts the name, duplicates.
    """
    lists: dict[str, list[tuple[str, str]]] = {}
    machine = None
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        fields = [f.strip() for f in row]
        if not any(fields):
            continue

        def fail(why: str, number: int = number, fields: list[str] = fields) -> LabelListError:
            return LabelListError(f"{source}, line {number} ({','.join(fields)}): {why}")

        if len(fields) == 1:
            machine = fields[0]
            if machine.lower().endswith(".wav"):
                raise fail("a single field must name a machine type, not a clip")
            if machine in lists:
                raise fail(f"machine type {machine} is listed twice")
            lists[machine] = []
            continue
        if machine is None:
            raise fail("a clip row before the first machine-type line")
        if len(fields) > 3:
            raise fail("expected anonymous_name,labelled_name[,0|1]")
        anonymous, labelled = fields[0], fields[1]
        try:
            anon_fields, label_fields = parse_file_name(anonymous), parse_file_name(labelled)
        except UnrecognisedFileName as e:
            raise fail(str(e)) from None
        if anon_fields.label is not None:
            raise fail(f"the anonymous name {anonymous} already carries a label")
        if label_fields.label is None or label_fields.domain is None:
            raise fail(f"the labelled name {labelled} carries no domain and label")
        if label_fields.section != anon_fields.section:
            raise fail(
                f"section {anon_fields.section} of {anonymous} differs from section {label_fields.section} of {labelled}"
            )
        if len(fields) == 3:
            if fields[2] not in ("0", "1"):
                raise fail("the third field must be 0 (normal) or 1 (anomaly)")
            if (fields[2] == "1") != (label_fields.label == "anomaly"):
                raise fail(f"the third field {fields[2]} contradicts the label of {labelled}")
        lists[machine].append((anonymous, labelled))
    for name, rows in lists.items():
        for column, what in ((0, "anonymous"), (1, "labelled")):
            seen = [r[column] for r in rows]
            if len(set(seen)) != len(seen):
                duplicate = next(n for n in seen if seen.count(n) > 1)
                raise LabelListError(f"{source}: {what} name {duplicate} appears twice under {name}")
    if not lists:
        raise LabelListError(f"{source} holds no machine types: is it an eval_data_list_<year>.csv file?")
    return lists


def read_label_list(path: Path) -> dict[str, list[tuple[str, str]]]:
    """`parse_label_list` of a file (CRLF or LF line ends)."""
    return parse_label_list(Path(path).read_text(encoding="utf-8-sig"), source=str(path))


def label_machine(machine_dir: Path, rows: list[tuple[str, str]], force: bool = False) -> LabelResult:
    """Give one machine type's anonymous test clips their labelled names (see the module docstring).

    Raises:
        LabelListError: no `test/` folder, or the list and the clips on disk differ (a wrong year or
            an incomplete download); nothing is written then.
    """
    machine_dir = Path(machine_dir)
    test_dir = machine_dir / "test"
    folders = split_dirs(machine_dir, "test")
    if not folders:
        raise LabelListError(
            f"{test_dir} does not exist: download the evaluation test data first (./00_download.sh -e)"
        )
    clip_paths = {p.name: p for p in wav_files(folders)}
    on_disk = set(clip_paths)
    listed = {anonymous for anonymous, _ in rows}
    missing, unlisted = sorted(listed - on_disk), sorted(on_disk - listed)
    if missing or unlisted:
        raise LabelListError(
            f"the label list for {machine_dir.name} does not fit {', '.join(map(str, folders))}: {len(missing)} listed clips are not "
            f"there{' (e.g. ' + missing[0] + ')' if missing else ''} and {len(unlisted)} clips there are not "
            f"listed{' (e.g. ' + unlisted[0] + ')' if unlisted else ''}. Is it the list of another year, or is the "
            f"download incomplete (rerun ./00_download.sh -e --force)?"
        )
    mapping = dict(sorted(rows))
    renamed = machine_dir / RENAMED_FOLDER
    if (
        not force
        and read_eval_labels(machine_dir) == mapping
        and renamed.is_dir()
        and {p.name for p in renamed.iterdir()} == set(mapping.values())
    ):
        return LabelResult(machine_dir.name, len(mapping), skipped=True, linked=False)

    tmp = machine_dir / f".{RENAMED_FOLDER}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    linked = True
    for anonymous, labelled in mapping.items():
        if linked:
            try:
                os.link(clip_paths[anonymous], tmp / labelled)
                continue
            except OSError as e:
                log.info("%s: cannot hard-link (%s); copying the clips instead", machine_dir.name, e)
                linked = False
        shutil.copy2(clip_paths[anonymous], tmp / labelled)
    if renamed.exists():
        old = machine_dir / f".{RENAMED_FOLDER}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(renamed, old)
        os.replace(tmp, renamed)
        shutil.rmtree(old)
    else:
        os.replace(tmp, renamed)
    write_csv(machine_dir / EVAL_LABELS_FILE, list(mapping.items()))
    return LabelResult(machine_dir.name, len(mapping), skipped=False, linked=linked)


def label_dataset(
    raw_dir: Path, lists: dict[str, list[tuple[str, str]]], machines: list[str] | None = None, force: bool = False
) -> list[LabelResult]:
    """Label every machine type of `raw_dir` (or of `machines`) that has a `test/` folder.

    A listed machine type that was not downloaded is skipped with a note; a machine type on disk
    that the list does not name raises a LabelListError.
    """
    raw_dir = Path(raw_dir)
    wanted = machines if machines else sorted(lists)
    results = []
    for machine in wanted:
        machine_dir = raw_dir / machine
        if not split_dirs(machine_dir, "test"):
            log.info("%s: no evaluation test clips in %s; nothing to label", machine, machine_dir)
            continue
        if machine not in lists:
            raise LabelListError(
                f"the label list names no machine type {machine} (it names {', '.join(lists)}): is it the list of another year?"
            )
        results.append(label_machine(machine_dir, lists[machine], force=force))
    return results
