"""Fixtures of the network tests: the BEATs reference files under `../shared/reference/beats`."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def beats_reference_dir(shared_dir: Path) -> Path:
    """Official-format tiny BEATs checkpoints, golden arrays and the full-size manifest."""
    path = shared_dir / "reference" / "beats"
    if not path.is_dir():
        pytest.fail(f"BEATs reference data not found at {path}: check out `shared/` beside the repository")
    return path
