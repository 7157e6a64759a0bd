"""Fixtures shared by the network tests: where the reference files of `../shared/reference/` live."""

from pathlib import Path

import pytest

# tests/networks/conftest.py -> parents[2] is the repository root; CI checks `shared/` out beside it.
SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="session")
def beats_reference_dir() -> Path:
    """Directory with the official-format tiny BEATs checkpoints, golden arrays and manifest."""
    path = SHARED_DIR / "reference" / "beats"
    if not path.is_dir():
        pytest.fail(f"BEATs reference data not found at {path}: check out `shared/` beside the repository")
    return path
