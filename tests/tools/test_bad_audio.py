"""Clips holding NaN or Inf samples, through the real training and test drivers (their main(), in
this process) of the feature-based systems, on a tiny corpus written here: a broken training clip
stops training naming the file (or is skipped with a warning), a broken test clip stops scoring
naming it, and no submission file holds a `nan` score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from datasets.demo_corpus import DEV_MACHINES, CorpusSize, write_machine
from tools import test as test_driver
from tools import train as train_driver

MACHINE = DEV_MACHINES[0]  # SynthFan
SYSTEMS = ["classical", "autoencoder"]


@pytest.fixture
def corpus(tmp_path) -> Path:
    """Your-own-recordings layout: `<root>/SynthFan/{train,test}`, ten 0.5 s training clips and
    four anonymous test clips `section_00_000[0-3].wav`."""
    root = tmp_path / "data"
    write_machine(
        root,
        MACHINE,
        CorpusSize(seconds=0.5, source_train=8, target_train=2, test_per_group=1),
        seed=0,
        anonymous_test=True,
    )
    return root


def _args(system: str, corpus: Path, tmp_path: Path) -> list[str]:
    return [
        "-d",
        "--system",
        system,
        "--data-root",
        str(corpus),
        "--run.model_dir",
        str(tmp_path / "models"),
        "--run.result_dir",
        str(tmp_path / "results"),
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--data.workers",
        "1",
        "--autoencoder.epochs",
        "1",
    ]


def _poison(path: Path) -> None:
    """Rewrite a clip as a float WAV with one NaN sample, as a broken export would."""
    wave, rate = sf.read(path, dtype="float32")
    wave[100] = np.nan
    sf.write(path, wave, rate, subtype="FLOAT")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if " ERROR " in line]


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_non_finite_training_clip_stops_training_or_is_skipped(system, corpus, tmp_path, capsys):
    bad = sorted((corpus / MACHINE.name / "train").glob("*.wav"))[3]
    _poison(bad)
    args = _args(system, corpus, tmp_path)

    assert train_driver.main(args) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert _error_lines(stderr)[0].endswith(
        f"ERROR train: {MACHINE.name}: training failed: {bad}: 1 of its 8000 samples are not finite (NaN or Inf) "
        "(set data.on_bad_file: skip to leave broken training clips out)"
    )

    assert train_driver.main(args + ["--data.on_bad_file", "skip"]) == 0
    stderr = capsys.readouterr().err
    assert f"WARNING datasets.audio: skipping {bad}: 1 of its 8000 samples are not finite (NaN or Inf)" in stderr
    assert f"{MACHINE.name}: done (9 training clips)" in stderr


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_non_finite_test_clip_stops_scoring_and_writes_no_nan_score(system, corpus, tmp_path, capsys):
    args = _args(system, corpus, tmp_path)
    assert train_driver.main(args) == 0
    bad = corpus / MACHINE.name / "test" / "section_00_0003.wav"
    _poison(bad)
    capsys.readouterr()

    assert test_driver.main(args) == 1
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert [line.split(" ERROR ")[1] for line in _error_lines(stderr)] == [
        f"test: {bad}: 1 of its 8000 samples are not finite (NaN or Inf)"
    ]
    assert not list((tmp_path / "results").rglob("anomaly_score_*.csv"))
