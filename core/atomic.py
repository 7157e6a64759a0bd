"""Atomic file writes: a file either has its complete new content or its old one, never a part,
so a killed run cannot leave a half-written CSV, checkpoint or cache entry that looks complete."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it replaces `path` only if the block succeeds.

    The temporary name carries the host name and process id, so parallel writers never share one,
    and the temporaries that killed writers left beside `path` are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _remove_orphans(path: Path) -> None:
    """Remove the temporary siblings of `path` whose writer, on this host, is gone (a SIGKILL or a
    power cut runs no clean-up). A writer on another host sharing the folder cannot be checked
    from here, so its temporaries stay; names without a host are from before hosts were named."""
    own = re.compile(rf"\.{re.escape(path.name)}\.(?:(?P<host>.+)\.)?(?P<pid>\d+)\.tmp")
    host = socket.gethostname()
    for sibling in path.parent.iterdir():
        match = own.fullmatch(sibling.name)
        if match and match["host"] in (None, host) and not _alive(int(match["pid"])):
            sibling.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Whether a process `pid` may exist here (signal 0 only asks); True keeps its file."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process; a number no pid can be
        pass
    return True


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def torch_save(obj: object, path: Path) -> None:
    """`torch.save` that leaves either the complete new file or the old one (checkpoints, models)."""
    import torch  # here, so the data tools that write text need not load torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def write_csv(path: Path, rows: list[list]) -> None:
    """Rows through the csv module (its quoting, '\\n' line ends), written atomically."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_text(path, buffer.getvalue())


def replace_folder(new: Path, old: Path) -> None:
    """Put the complete folder `new` in the place of `old` (which may not exist).

    Two renames with a moment between them in which `old` is absent, never a mix of both: `old`
    is first moved aside, then `new` renamed into place, then the old one removed.
    """
    new, old = Path(new), Path(old)
    aside = old.with_name(f".{old.name}.{os.getpid()}.old")
    if old.exists():
        old.replace(aside)
    new.replace(old)
    shutil.rmtree(aside, ignore_errors=True)
