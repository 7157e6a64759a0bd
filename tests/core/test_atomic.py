"""Atomic writes keep the old content when writing fails part-way, and clean up after killed writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.atomic import atomic_path, write_csv, write_text
from tests.conftest import REPO_ROOT


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "result.csv"
    write_csv(path, [["a", 1.5], ["b, c", 2]])
    assert path.read_text() == 'a,1.5\n"b, c",2\n'
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == 'a,1.5\n"b, c",2\n'
    assert [p.name for p in path.parent.iterdir()] == ["result.csv"]


def test_a_killed_writers_temporary_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path):
    path = tmp_path / "autoencoder.pt"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from core.atomic import atomic_path\n"
            "with atomic_path(Path(sys.argv[1])) as tmp:\n"
            "    tmp.write_bytes(b'half a checkpoint'); print(tmp, flush=True); time.sleep(600)",
            str(path),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        orphan = Path(writer.stdout.readline().strip())
        assert orphan.parent == tmp_path and orphan.read_bytes() == b"half a checkpoint"
        write_text(path, "first")
        assert orphan.exists()  # its writer is still at work
    finally:
        writer.kill()
        writer.wait()
    assert orphan.exists()  # SIGKILL left it behind
    kept = [
        tmp_path / f".train_scores.csv.{writer.pid}.tmp",  # another file's: not this writer's business
        tmp_path / f".autoencoder.pt.otherhost.{writer.pid}.tmp",  # its writer's pid is not ours to check
        tmp_path / ".autoencoder.pt.99999999999999999999.tmp",
    ]  # no pid at all
    for name in kept:
        name.write_text("x")
    write_text(path, "second")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([p.name for p in kept] + ["autoencoder.pt"])
    assert path.read_text() == "second"


def test_a_temporary_left_by_an_earlier_version_is_removed(tmp_path):
    """Before temporary names carried the host, they were `.<name>.<pid>.tmp`."""
    path = tmp_path / "result.csv"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / f".result.csv.{int(dead.stdout)}.tmp").write_text("half")
    write_text(path, "a,1\n")
    assert [p.name for p in tmp_path.iterdir()] == ["result.csv"]
