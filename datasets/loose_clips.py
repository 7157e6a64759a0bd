"""WAV files of any name (new recordings of a machine) -> `Clip` records a trained model can score,
and a watched folder -> its new files once they are completely written.

Reads file names and folder listings (sizes, modification times); writes nothing. The machine type
and section of a clip come from the caller's options, else from a DCASE-style name or folder
(`<machine>/test/section_01_....wav`), else from the model when it knows only one.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from datasets.audio import is_cut_short
from datasets.filenames import UnrecognisedFileName, parse_file_name
from datasets.manifest import Clip, DatasetError, wav_files

log = logging.getLogger(__name__)


def expand_paths(paths: list[Path]) -> list[Path]:
    """The WAV files named, or lying directly in the folders named, in the order given (each
    folder's files sorted by name).

    Raises:
        DatasetError: a path that does not exist, a file that is not a WAV, or no WAV at all.
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(wav_files([path]), key=lambda p: p.name)
        elif path.is_file():
            if path.suffix.lower() != ".wav":
                raise DatasetError(f"{path} is not a WAV file (*.wav)")
            files.append(path)
        else:
            raise DatasetError(f"{path} does not exist")
    if not files:
        raise DatasetError(f"no WAV files (*.wav) in {', '.join(map(str, paths))}")
    return files


def loose_clips(
    paths: list[Path], trained: list[tuple[str, str]], machine: str | None = None, section: str | None = None
) -> list[Clip]:
    """Test clips for `paths`, each with the machine type and section it is scored as.

    Args:
        paths: WAV files of any name.
        trained: the (machine, section) pairs the model knows.
        machine, section: the caller's choice for every clip (None: from the name, folder or model).

    Raises:
        DatasetError: a clip whose machine type or section cannot be told, or that the model does
            not know; the message names the file and the valid values.
    """
    machines = sorted({m for m, _ in trained})
    clips = []
    for index, path in enumerate(paths):
        try:
            fields = parse_file_name(path.name)
        except UnrecognisedFileName:
            fields = None
        clip_machine = machine or _machine_from_folder(path, machines)
        if clip_machine not in machines:
            what = (
                f"machine type {clip_machine!r} is not one the model was trained on"
                if clip_machine
                else ("which machine type it is, neither its folder nor the model says")
            )
            raise DatasetError(f"{path}: {what}: give --machine ({', '.join(machines)})")
        sections = sorted(s for m, s in trained if m == clip_machine)
        clip_section = section or (fields.section if fields else (sections[0] if len(sections) == 1 else None))
        if clip_section not in sections:
            what = (
                f"section {clip_section!r} of {clip_machine} is not one the model was trained on"
                if clip_section
                else (f"which section it is, its name does not say and the model has several for {clip_machine}")
            )
            raise DatasetError(f"{path}: {what}: give --section ({', '.join(sections)})")
        clips.append(
            Clip(
                path=path,
                machine=clip_machine,
                section=clip_section,
                domain=fields.domain if fields else None,
                split="test",
                label=fields.label if fields else None,
                index=fields.index if fields else index,
                attributes=fields.attributes if fields else (),
                attribute_string=fields.attribute_string if fields else None,
            )
        )
    return clips


def _machine_from_folder(path: Path, machines: list[str]) -> str | None:
    """The only machine type the model knows, or the `<machine>` of a `<machine>/<split>/clip.wav` path."""
    if len(machines) == 1:
        return machines[0]
    parts = path.absolute().parts
    return next((part for part in reversed(parts[:-1]) if part in machines), None)


class StableFiles:
    """A folder polled for new WAV files: each is reported once, at the first poll that finds its
    size and modification time unchanged since the poll before and no less audio than its header
    promises (so never while it is still being written or copied). Hidden files (`.name.wav`, the
    temporary names of rsync and atomic writers) are left alone until renamed."""

    def __init__(self, folder: Path, done: set[str]) -> None:
        """`done`: names already handled (scored before a restart): never reported."""
        self.folder = Path(folder)
        self.done = set(done)
        self._last: dict[str, tuple[int, int]] = {}
        self._waiting: set[str] = set()  # stable but cut short, already logged

    def poll(self) -> list[Path]:
        """New files that stopped changing, oldest first.

        Raises:
            DatasetError: the folder no longer exists (unmounted, moved or deleted).
        """
        now: dict[str, tuple[int, int]] = {}
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.name.lower().endswith(".wav") or entry.name in self.done:
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed between the listing and the look
                        continue
                    now[entry.name] = (st.st_size, st.st_mtime_ns)
        except (FileNotFoundError, NotADirectoryError):
            raise DatasetError(f"watched folder {self.folder} disappeared (moved, deleted or unmounted)") from None
        stable = [name for name, stamp in now.items() if stamp[0] > 0 and self._last.get(name) == stamp]
        ready = [name for name in stable if not is_cut_short(self.folder / name)]
        for name in sorted(set(stable) - set(ready) - self._waiting):
            log.info("%s: holds less audio than its header promises: waiting for the rest", self.folder / name)
        self._waiting = set(stable) - set(ready)
        self._last = now
        ready.sort(key=lambda name: (now[name][1], name))
        self.done.update(ready)
        return [self.folder / name for name in ready]
