"""Unpack one DCASE zip into `<raw>/<machine>/`, checked, atomically, with a completion marker.

Reads a zip of one machine type (development: `train/` and `test/` or, in 2021, `source_test/` and
`target_test/`; additional training: `train/`; evaluation test: `test/`; plus attribute tables and,
in 2025, `supplemental/`). Writes, in order:
  1. `<raw>/../.tmp/unpack_<zip>/`: the zip extracted, whatever its top-level folder is called;
  2. the machine folder: moved into place whole if it does not exist yet, else merged one top-level
     entry at a time (a split folder is replaced by a rename, attribute tables are merged row by row),
     so an additional-training zip and an evaluation-test zip share `eval_data/raw/<machine>/`;
  3. `<raw>/<machine>/.completed_<zip name>`: the marker that makes a rerun skip this zip.
A zip that is corrupt, truncated or implausible stops with an `UnpackError` and leaves no partial
machine folder: nothing is moved before every check has passed, and the temporary folder is removed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.atomic import write_csv, write_text
from datasets.catalog import ARCHIVE_SPLITS
from datasets.filenames import UnrecognisedFileName, parse_file_name
from datasets.manifest import SPLIT_FOLDERS, split_dirs, wav_files

log = logging.getLogger(__name__)

MARKER_PREFIX = ".completed_"
CORRUPT_SUFFIX = ".corrupt"
_IGNORED_TOP = ("__MACOSX",)


class UnpackError(RuntimeError):
    """A zip that cannot be unpacked into a usable machine folder; the message says what to do."""


@dataclass(frozen=True)
class UnpackResult:
    machine_dir: Path
    clips: dict[str, int]  # split -> WAV files the zip brought (empty when skipped)
    skipped: bool


def marker_path(machine_dir: Path, zip_name: str) -> Path:
    """The completion marker of one zip inside the machine folder it was unpacked into."""
    return machine_dir / f"{MARKER_PREFIX}{zip_name}"


def is_unpacked(machine_dir: Path, zip_name: str) -> bool:
    return marker_path(machine_dir, zip_name).is_file()


def unpack_archive(
    zip_path: Path,
    raw_dir: Path,
    machine: str,
    kind: str,
    expected_clips: dict[str, int] | None = None,
    sections: tuple[str, ...] | None = None,
    force: bool = False,
) -> UnpackResult:
    """Unpack `zip_path` (an archive of `kind`: dev | additional_train | eval_test) into `raw_dir/machine`.

    Args:
        expected_clips: split -> least number of WAV files the zip must bring (catalogue counts);
            None or a missing split: at least one.
        sections: section ids the clip names may carry; None: any.
        force: unpack again although the marker says it is done.
    Raises:
        UnpackError: the zip is corrupt or truncated (it is then renamed to `<zip>.corrupt`, so a rerun
            downloads it again), or it lacks the folders or clips the kind requires.
    """
    zip_path, raw_dir = Path(zip_path), Path(raw_dir)
    machine_dir = raw_dir / machine
    marker = marker_path(machine_dir, zip_path.name)
    if marker.is_file() and not force:
        return UnpackResult(machine_dir, {}, skipped=True)
    if kind not in ARCHIVE_SPLITS:
        raise ValueError(f"unknown archive kind {kind!r}; valid: {', '.join(ARCHIVE_SPLITS)}")
    work_root = raw_dir.parent / ".tmp"
    work = work_root / f"unpack_{zip_path.name}"
    shutil.rmtree(work, ignore_errors=True)  # left over from a run that was killed
    work.mkdir(parents=True)
    try:
        _extract(zip_path, work)
        root = _machine_root(work, zip_path)
        clips = _check(root, zip_path, kind, expected_clips or {}, sections)
        raw_dir.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        _move_into_place(root, machine_dir, work_root)
        _write_marker(
            marker,
            {"zip": zip_path.name, "kind": kind, "clips": clips, "unpacked": time.strftime("%Y-%m-%dT%H:%M:%S%z")},
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        try:
            work_root.rmdir()
        except OSError:
            pass  # other unpacks still use it, or it is already gone
    return UnpackResult(machine_dir, clips, skipped=False)


def _extract(zip_path: Path, dest: Path) -> None:
    """Extract every member, checking names (no absolute paths or `..`) and CRCs."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                parts = PurePosixPath(info.filename.replace("\\", "/")).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
                    raise UnpackError(f"{zip_path} holds an unsafe member name {info.filename!r}; not unpacking it")
            zf.extractall(dest)  # reads every member in full, so a CRC mismatch raises here
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
        quarantine = zip_path.with_name(zip_path.name + CORRUPT_SUFFIX)
        os.replace(zip_path, quarantine)
        raise UnpackError(
            f"{zip_path.name} is corrupt or truncated ({e}); nothing was unpacked. It was moved aside to "
            f"{quarantine}: rerun the same command to download it again (delete the .corrupt file once done)"
        ) from None
    except OSError as e:
        raise UnpackError(
            f"could not unpack {zip_path} into {dest}: {e}. Free disk space if it is full, then rerun"
        ) from None


def _machine_root(work: Path, zip_path: Path) -> Path:
    """The extracted folder that holds the split folders: `<machine>/`, a differently named top
    folder, a deeper one (`dev_data/fan/`), or the extraction folder itself."""
    split_names = set(SPLIT_FOLDERS["train"] + SPLIT_FOLDERS["test"])
    level = [work]
    while level:
        found = [d for d in level if any((d / s).is_dir() for s in split_names)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(str(d.relative_to(work)) for d in found)
            raise UnpackError(
                f"{zip_path.name} holds several machine folders ({names}); expected one machine type per zip"
            )
        level = [
            c
            for d in level
            for c in sorted(d.iterdir())
            if c.is_dir() and c.name not in _IGNORED_TOP and not c.name.startswith(".")
        ]
    raise UnpackError(
        f"{zip_path.name} holds no {'/'.join(sorted(split_names))} folder: it is not a DCASE machine-type zip. "
        f"Check the URL (--base-url) and delete {zip_path} before rerunning"
    )


def _check(
    root: Path, zip_path: Path, kind: str, expected: dict[str, int], sections: tuple[str, ...] | None
) -> dict[str, int]:
    """Split -> WAV count, after checking that the zip brings what `kind` needs and nothing it would clobber."""
    wanted = ARCHIVE_SPLITS[kind]
    foreign = [s for s in ("train", "test") if s not in wanted and split_dirs(root, s)]
    if foreign:
        raise UnpackError(
            f"{zip_path.name} is a {kind} zip but holds {foreign[0]} clips; it would overwrite another archive's data. Check the URL"
        )
    clips = {}
    for split in wanted:
        folders = split_dirs(root, split)
        names = [p.name for p in wav_files(folders)]
        need = max(expected.get(split, 1), 1)
        if len(names) < need:
            where = "/".join(f.name for f in folders) or SPLIT_FOLDERS[split][0]
            raise UnpackError(
                f"{zip_path.name} brings {len(names)} {split} clips in {where}/, fewer than the {need} the catalogue "
                f"expects: the zip is incomplete or not the right file. Delete {zip_path} and rerun to download it again"
            )
        for name in names:
            try:
                fields = parse_file_name(name)
            except UnrecognisedFileName as e:
                raise UnpackError(f"{zip_path.name}: {e}") from None
            if sections is not None and fields.section not in sections:
                raise UnpackError(
                    f"{zip_path.name}: clip {name} is of section {fields.section}, but this machine type has sections "
                    f"{', '.join(sections)} in the catalogue: the zip belongs to another year or set"
                )
        clips[split] = len(names)
    return clips


def _move_into_place(root: Path, machine_dir: Path, work_root: Path) -> None:
    """Expose the checked folder: one rename if the machine folder is new, else entry by entry."""
    for junk in _IGNORED_TOP:
        shutil.rmtree(root / junk, ignore_errors=True)
    if not machine_dir.exists():
        os.replace(root, machine_dir)
        return
    trash = work_root / f"trash_{machine_dir.name}_{os.getpid()}"
    for entry in sorted(root.iterdir()):
        target = machine_dir / entry.name
        if entry.is_dir():
            if target.exists():
                trash.mkdir(parents=True, exist_ok=True)
                os.replace(target, trash / entry.name)
            os.replace(entry, target)
        elif target.is_file() and entry.name.startswith("attributes_") and entry.suffix == ".csv":
            _merge_attribute_tables(entry, target)
        else:
            os.replace(entry, target)
    shutil.rmtree(trash, ignore_errors=True)


def _merge_attribute_tables(new: Path, existing: Path) -> None:
    """Union of two `attributes_<ss>.csv` tables (e.g. train rows and test rows), keyed by file name."""
    with existing.open(newline="") as f:
        old_rows = list(csv.reader(f))
    with new.open(newline="") as f:
        new_rows = list(csv.reader(f))
    old_header, *old_body = old_rows or [[]]
    new_header, *new_body = new_rows or [[]]
    header = max(old_header, new_header, key=len)  # the table with more attribute columns names them all
    body = {row[0]: row for row in old_body + new_body if row}
    write_csv(existing, [header, *(body[k] for k in sorted(body))])


def _write_marker(path: Path, content: dict) -> None:
    write_text(path, json.dumps(content, indent=1) + "\n")
