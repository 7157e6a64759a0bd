"""Shared fixtures: paths to the reference data beside the clone and a generated demo corpus."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

# The Zenodo-like HTTP server and DCASE-layout zips, used by the data tests and the download command's.
pytest_plugins = ["tests.zenodo_fixtures"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """`../shared` beside the clone (reference outputs, real clips); CI checks it out there."""
    if not SHARED.is_dir():
        pytest.fail(f"reference data not found at {SHARED}: clone the project beside shared/")
    return SHARED


@pytest.fixture(scope="session")
def dcase_reference(shared_dir: Path) -> Path:
    return shared_dir / "reference" / "dcase"


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """The default demo corpus, generated once per test session by the real generator."""
    from datasets.demo_corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("demo"))


def run_script(
    args: list[str], cwd: Path = REPO_ROOT, env: dict | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run a real entry point (shell script or `python -m ...`) and capture its output."""
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """`result` of `run_script`, asserting it succeeded (the failure shows the end of its output)."""
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-5000:]
    return result


def run_dirs(root: Path) -> list[str]:
    """Options that keep a run's models, results and feature cache under `root`."""
    return [
        "--run.model_dir",
        str(root / "models"),
        "--run.result_dir",
        str(root / "results"),
        "--data.cache_dir",
        str(root / "cache"),
    ]


def kill_when(args: list[str], ready: Callable[[], bool], timeout: float = 600) -> None:
    """Start a real entry point (e.g. `./01_train.sh ...`) and SIGKILL it, with every worker it has,
    as soon as `ready()` holds. Fails if it ends by itself first or `ready()` never holds."""
    env = {**os.environ, "PYTHON": sys.executable}
    process = subprocess.Popen(
        args, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, "the process ended before it could be killed"
            assert time.monotonic() < deadline, f"not ready within {timeout} s"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL


def result_figures(result_dir: Path) -> dict[str, float | None]:
    """The figures tests check in the `result.csv` of a results folder, read by the product's own reader
    (`read_dev_results`; its test holds it to the layout `02_test.sh` writes): `official`, the official
    score, and `auc_source`, `auc_target`, `pauc`, each the mean over machine types of the machine
    type's arithmetic mean over its sections. None where a value is undefined."""
    from reporting.submission_meta import DEV_COLUMNS, read_dev_results

    dev = read_dev_results(result_dir / "result.csv")
    figures: dict[str, float | None] = {"official": dev.official_score}
    for key in DEV_COLUMNS.values():
        values = [machine[key] for machine in dev.machines.values()]
        figures[key] = None if None in values else sum(values) / len(values)
    return figures


def parse_figures(stdout: str) -> dict[str, tuple[float, str]]:
    """A benchmark's `name value unit` lines as name -> (value, unit)."""
    parsed = {}
    for line in stdout.splitlines():
        name, value, unit = line.split(" ")
        parsed[name] = (float(value), unit)
    return parsed
