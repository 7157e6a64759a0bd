"""Atomic writes keep the old content when writing fails part-way."""
from __future__ import annotations

import pytest

from core.atomic import atomic_path, write_csv


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
