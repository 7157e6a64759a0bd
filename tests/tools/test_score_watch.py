"""`./04_score.sh --watch` as a real process on a folder that files arrive in: each complete file
scored once (a file still being copied only when complete), a clean stop on SIGINT and SIGTERM, a
restart after SIGKILL without a duplicate row, and an error when the watched folder disappears."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reporting.score_log import read_scores
from tests.conftest import REPO_ROOT, kill_when
from tools import score as score_driver
from tools import train as train_driver

INTERVAL = "0.3"  # seconds between polls


@pytest.fixture(scope="module")
def model(demo_corpus, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("watch_model")
    args = ["-d", "--system", "classical", "--data-root", str(demo_corpus), "--machines", "SynthFan",
            "--run.model_dir", str(root / "models"), "--data.cache_dir", str(root / "cache")]  # fmt: skip
    assert train_driver.main(args) == 0
    return root / "models" / "dev_data" / "classical" / "SynthFan"


@pytest.fixture(scope="module")
def clips(demo_corpus) -> list[Path]:
    return sorted((demo_corpus / "dev_data" / "raw" / "SynthFan" / "test").glob("*.wav"))[:6]


def _command(model: Path, inbox: Path, out: Path) -> list[str]:
    return ["./04_score.sh", "--model", str(model), "--watch", str(inbox), "--interval", INTERVAL, "--out", str(out)]


def _start(command: list[str], log: Path) -> subprocess.Popen:
    """The watcher in a session of its own, as a terminal or service manager would start it."""
    with log.open("w") as f:
        return subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHON": sys.executable},
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _until(condition: Callable[[], bool], process: subprocess.Popen | None = None, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, "the watcher ended"
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.1)


def _names(out: Path) -> list[str]:
    return [Path(r.file).name for r in read_scores(out)] if out.exists() else []


def _stop(process: subprocess.Popen, signum: int) -> int:
    """Send `signum` to the watcher's whole process group (as Ctrl-C in a terminal does); its exit status."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
    return process.wait(timeout=120)


def test_files_are_scored_once_complete_and_sigint_stops_cleanly(model, clips, tmp_path):
    inbox, out, log = tmp_path / "inbox", tmp_path / "scores.csv", tmp_path / "watch.log"
    inbox.mkdir()
    shutil.copyfile(clips[0], inbox / "first.wav")
    process = _start(_command(model, inbox, out), log)
    try:
        _until(lambda: _names(out) == ["first.wav"], process)
        whole = clips[1].read_bytes()
        (inbox / "copying.wav").write_bytes(whole[: len(whole) // 3])  # the header promises the whole clip
        shutil.copyfile(clips[2], inbox / "second.wav")
        (inbox / ".partial.wav").write_bytes(whole)  # a hidden temporary name: left alone
        _until(lambda: _names(out) == ["first.wav", "second.wav"], process)
        _until(lambda: "copying.wav: holds less audio than its header promises" in log.read_text(), process)
        time.sleep(5 * float(INTERVAL))
        assert _names(out) == ["first.wav", "second.wav"]
        with (inbox / "copying.wav").open("ab") as f:
            f.write(whole[len(whole) // 3 :])
        _until(lambda: len(_names(out)) == 3, process)
        assert _stop(process, signal.SIGINT) == 0
    finally:
        _stop(process, signal.SIGKILL)
    text = log.read_text()
    assert "SIGINT received: stopped; 3 clip(s) scored in this run, 3 in all" in text and "Traceback" not in text
    rows = {Path(r.file).name: r for r in read_scores(out)}
    assert list(rows) == ["first.wav", "second.wav", "copying.wav"]
    # The completed copy scores as the original clip does in a one-off run.
    once = tmp_path / "once.csv"
    assert score_driver.main(["--model", str(model), "--out", str(once), str(clips[1])]) == 0
    assert rows["copying.wav"].score == read_scores(once)[0].score


def test_a_watcher_killed_with_sigkill_resumes_without_duplicates(model, clips, tmp_path):
    inbox, out, log = tmp_path / "inbox", tmp_path / "scores.csv", tmp_path / "watch.log"
    inbox.mkdir()
    for clip in clips[:3]:
        shutil.copyfile(clip, inbox / clip.name)
    kill_when(_command(model, inbox, out), lambda: len(_names(out)) == 3)
    for clip in clips[3:]:
        shutil.copyfile(clip, inbox / clip.name)
    process = _start(_command(model, inbox, out), log)
    try:
        _until(lambda: len(_names(out)) >= 6, process)
        time.sleep(5 * float(INTERVAL))  # nothing is scored a second time later either
        assert _stop(process, signal.SIGTERM) == 0
    finally:
        _stop(process, signal.SIGKILL)
    assert sorted(_names(out)) == sorted(c.name for c in clips)
    text = log.read_text()
    assert (
        "3 clips scored before" in text and "SIGTERM received: stopped; 3 clip(s) scored in this run, 6 in all" in text
    )


def test_a_watched_folder_that_disappears_ends_the_watcher_with_an_error(model, clips, tmp_path):
    inbox, out, log = tmp_path / "inbox", tmp_path / "scores.csv", tmp_path / "watch.log"
    inbox.mkdir()
    process = _start(_command(model, inbox, out), log)
    try:
        _until(lambda: "INFO score: watching" in log.read_text(), process)
        shutil.rmtree(inbox)
        assert process.wait(timeout=120) == 1
    finally:
        _stop(process, signal.SIGKILL)
    assert f"ERROR score: watched folder {inbox} disappeared (moved, deleted or unmounted)" in log.read_text()
