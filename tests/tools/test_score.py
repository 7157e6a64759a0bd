"""tools.score (./04_score.sh) and tools.export on models trained here on the demo corpus (tiny
settings): clips of any name scored by every system exactly as 02_test.sh scores them, the same
scores from an exported file, and the errors users meet (incomplete model, damaged or foreign
export, another sample rate, a section the model does not know)."""

from __future__ import annotations

import csv
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reporting.decision import gamma_threshold
from reporting.score_log import COLUMNS, read_scores
from tests.conftest import ok, run_script
from tools import export as export_driver
from tools import score as score_driver
from tools import test as test_driver
from tools import train as train_driver

MACHINES = "SynthFan,SynthValve"
TINY = {
    "classical": [],
    "autoencoder": ["--autoencoder.epochs", "1"],
    "auxiliary": ["--auxiliary.channels", "[8,16]", "--auxiliary.blocks", "1", "--auxiliary.epochs", "1",
                  "--auxiliary.threads", "1"],
    "beats": ["--beats.checkpoint", "none", "--beats.preset", "tiny", "--beats.clip_seconds", "2.0",
              "--beats.tuning", "finetune", "--beats.smote_per_class", "0", "--beats.epochs", "1",
              "--beats.threads", "1"],
}  # fmt: skip
# DCASE names of the demo's SynthFan test clips -> the names they get here, as a user's recordings would.
RENAMED = {
    "section_00_source_test_normal_0000_spd_25_mic_1.wav": "fan room 2 - 08h00.wav",
    "section_00_source_test_anomaly_0000_spd_20_mic_1.wav": "fan room 2 - 09h00.WAV",
    "section_00_target_test_normal_0000_spd_32_mic_2.wav": "fan,room 2 - 10h00.wav",
    "section_00_target_test_anomaly_0001_spd_32_mic_2.wav": "rec-0004.wav",
}


@pytest.fixture(scope="module")
def trained(demo_corpus, tmp_path_factory) -> dict:
    """system -> (training arguments, 02_test.sh's results folder), each system trained and tested once."""
    root = tmp_path_factory.mktemp("score_models")
    runs = {}
    for system, extra in TINY.items():
        args = ["-d", "--system", system, "--data-root", str(demo_corpus), "--machines", MACHINES,
                "--run.model_dir", str(root / "models"), "--data.cache_dir", str(root / "cache"),
                "--data.workers", "1", *extra]  # fmt: skip
        assert train_driver.main(args) == 0
        assert test_driver.main([*args, "--run.result_dir", str(root / "results")]) == 0
        scorer = {"classical": "knn", "autoencoder": "mse", "auxiliary": "knn", "beats": "knn"}[system]
        runs[system] = (
            args,
            root / "results" / "dev_data" / f"{system}_{scorer}",
            root / "models" / "dev_data" / system,
        )
    return runs


@pytest.fixture(scope="module")
def recordings(demo_corpus, tmp_path_factory) -> Path:
    """Four SynthFan test clips under names no DCASE tool would accept."""
    folder = tmp_path_factory.mktemp("recordings")
    for name, new in RENAMED.items():
        shutil.copyfile(demo_corpus / "dev_data" / "raw" / "SynthFan" / "test" / name, folder / new)
    return folder


def _official_scores(results: Path) -> dict[str, float]:
    with (results / "anomaly_score_SynthFan_section_00_test.csv").open(newline="") as f:
        return {name: float(score) for name, score in csv.reader(f)}


def _train_scores(model: Path, scorer: str) -> np.ndarray:
    with (model / "train_scores.csv").open(newline="") as f:
        return np.array([float(r[scorer]) for r in csv.DictReader(f) if r["machine"] == "SynthFan"])


@pytest.mark.parametrize("system", list(TINY))
def test_each_system_scores_clips_of_any_name_as_02_test_does_and_from_its_exported_file(
    system, trained, recordings, tmp_path, capsys
):
    args, results, models = trained[system]
    model_dir = models / ("all" if system in ("auxiliary", "beats") else "SynthFan")
    out = tmp_path / "scores.csv"
    assert score_driver.main(["--model", str(models), "--machine", "SynthFan", "--section", "00", "--out", str(out),
                              str(recordings)]) == 0  # fmt: skip
    table = capsys.readouterr().out
    rows = read_scores(out)
    assert [Path(r.file).name for r in rows] == sorted(RENAMED.values())
    assert all(
        Path(r.file).parent == recordings.resolve() and (r.machine, r.section) == ("SynthFan", "00") for r in rows
    )
    official = _official_scores(results)
    scores = np.array([r.score for r in rows])
    by_name = {new: official[old] for old, new in RENAMED.items()}
    expected = np.array([by_name[Path(r.file).name] for r in rows])
    # The same model and clips; a network may round differently when the batch holds other clips.
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    scorer = results.name.split("_")[-1]
    train = _train_scores(model_dir, scorer)
    threshold = gamma_threshold(train, 0.9)
    assert all(r.threshold == threshold and r.decision == int(r.score > threshold) for r in rows)
    assert [r.percentile for r in rows] == pytest.approx([100 * np.mean(train <= s) for s in scores], abs=0.05)
    assert f"4 clip(s) scored, {sum(r.decision for r in rows)} judged anomalous -> {out}" in table
    assert all(name in table for name in RENAMED.values())  # every row is printed

    exported = tmp_path / f"{system}.model.zip"
    assert export_driver.main(["--model", str(models), "--machine", "SynthFan", "--out", str(exported)]) == 0
    with zipfile.ZipFile(exported) as archive:
        names = set(archive.namelist())
    assert {"manifest.json", "config.yaml", "train_scores.csv", ".completed"} <= names
    assert not any("checkpoint" in n or "training_log" in n for n in names)  # only what scoring reads
    again = tmp_path / "again.csv"
    assert score_driver.main(["--model", str(exported), "--machine", "SynthFan", "--section", "00", "--out", str(again),
                              *[str(recordings / n) for n in sorted(RENAMED.values())]]) == 0  # fmt: skip
    assert read_scores(again) == rows  # identical scores, thresholds, percentiles and decisions


def test_the_shell_script_takes_dcase_names_and_the_model_s_only_machine_type(trained, demo_corpus, tmp_path):
    _, _, models = trained["classical"]
    clips = sorted((demo_corpus / "dev_data" / "raw" / "SynthValve" / "test").glob("section_00_*_000[01]_*.wav"))
    result = ok(run_script(["./04_score.sh", "--model", str(models / "SynthValve"), "--score", "gaussian",
                            "--plot", "--out", str(tmp_path / "valve.csv"), *map(str, clips)]))  # fmt: skip
    with (tmp_path / "valve.csv").open(newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == COLUMNS and [Path(r[0]).name for r in lines[1:]] == [c.name for c in clips]
    assert {(r[1], r[2]) for r in lines[1:]} == {("SynthValve", "00")}
    assert (tmp_path / "valve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "valve.csv.state.json").read_text())["scorer"] == "gaussian"
    assert f"{len(clips)} clip(s) scored" in result.stdout and "INFO score: plot ->" in result.stderr


def test_an_incomplete_model_folder_is_refused_in_one_line(trained, recordings, tmp_path, capsys):
    _, _, models = trained["classical"]
    model = tmp_path / "SynthFan"
    shutil.copytree(models / "SynthFan", model)
    (model / "classical.joblib").unlink()
    assert score_driver.main(["--model", str(model), "--out", str(tmp_path / "s.csv"), str(recordings)]) == 1
    assert _errors(capsys) == [f"model file {model / 'classical.joblib'} is missing"]
    (model / ".completed").unlink()
    assert score_driver.main(["--model", str(model), "--out", str(tmp_path / "s.csv"), str(recordings)]) == 1
    assert _errors(capsys) == [f"no trained model in {model} (its .completed marker is missing)"]
    assert export_driver.main(["--model", str(model), "--out", str(tmp_path / "m.zip")]) == 1
    assert _errors(capsys) == [f"no trained model in {model} (its .completed marker is missing)"]
    assert not (tmp_path / "m.zip").exists()
    assert score_driver.main(["--model", str(models), "--out", str(tmp_path / "s.csv"), str(recordings)]) == 1
    assert _errors(capsys) == [f"{models} holds several models: give one model folder or --machine NAME "
                               "(there: SynthFan, SynthValve)"]  # fmt: skip


def test_a_damaged_or_foreign_exported_file_is_refused_in_one_line(trained, recordings, tmp_path, capsys):
    _, _, models = trained["classical"]
    exported = tmp_path / "fan.zip"
    assert export_driver.main(["--model", str(models / "SynthFan"), "--out", str(exported)]) == 0
    whole = exported.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(exported) as source, zipfile.ZipFile(foreign, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(
                name, json.dumps({"format": 99, "system": "classical"}) if name == "manifest.json" else data
            )
    lacking = tmp_path / "lacking.zip"
    with zipfile.ZipFile(exported) as source, zipfile.ZipFile(lacking, "w") as target:
        for name in source.namelist():
            if name != "classical.joblib":
                target.writestr(name, source.read(name))
    capsys.readouterr()
    expected = {
        cut: f"{cut} is not a model file written by python -m tools.export, or it is damaged (BadZipFile)",
        foreign: f"{foreign} was exported by another version (format 99, expected 1): export the model folder "
        "again with python -m tools.export",
        lacking: f"model file {lacking}:classical.joblib is missing",
    }
    for path, message in expected.items():
        assert score_driver.main(["--model", str(path), "--out", str(tmp_path / "s.csv"), str(recordings)]) == 1
        assert _errors(capsys) == [message]


def test_another_sample_rate_stops_or_is_skipped_as_data_on_bad_file_says(trained, recordings, tmp_path, capsys):
    _, _, models = trained["classical"]
    folder = tmp_path / "mixed"
    shutil.copytree(recordings, folder)
    wave, rate = sf.read(folder / "rec-0004.wav")
    sf.write(folder / "resampled.wav", wave[::2], rate // 2)
    command = ["--model", str(models / "SynthFan"), "--out", str(tmp_path / "s.csv"), str(folder)]
    assert score_driver.main(command) == 1
    assert _errors(capsys) == [
        f"{folder / 'resampled.wav'}: sample rate is 8000 Hz, expected 16000 Hz (data.sample_rate)"
    ]
    assert not (tmp_path / "s.csv").exists()
    assert score_driver.main([*command, "--data.on_bad_file", "skip"]) == 0
    assert f"WARNING score: skipping {folder / 'resampled.wav'}: sample rate is 8000 Hz" in capsys.readouterr().err
    assert sorted(Path(r.file).name for r in read_scores(tmp_path / "s.csv")) == sorted(RENAMED.values())


def test_a_section_or_machine_type_the_model_does_not_know_is_named(trained, recordings, tmp_path, capsys):
    _, _, models = trained["auxiliary"]
    out = ["--out", str(tmp_path / "s.csv")]
    assert score_driver.main(["--model", str(models), "--section", "01", *out, str(recordings)]) == 1
    first = recordings / sorted(RENAMED.values())[0]
    assert _errors(capsys) == [f"{first}: which machine type it is, neither its folder nor the model says: give --machine "
                               "(SynthFan, SynthValve)"]  # fmt: skip
    assert score_driver.main(["--model", str(models), "--machine", "SynthFan", "--section", "01", *out,
                              str(recordings)]) == 1  # fmt: skip
    assert _errors(capsys) == [f"{first}: section '01' of SynthFan is not one the model was trained on: give "
                               "--section (00)"]  # fmt: skip
    assert score_driver.main(["--model", str(models), "--score", "lof", *out, str(recordings)]) == 1
    assert _errors(capsys) == [f"{models}: system AuxiliarySystem has no scorer 'lof'; valid: knn, mahala, softmax"]


def test_training_options_that_differ_from_the_model_are_refused(trained, recordings, tmp_path, capsys):
    _, _, models = trained["classical"]
    command = ["--model", str(models / "SynthFan"), "--out", str(tmp_path / "s.csv"), str(recordings)]
    assert score_driver.main([*command, "--feature.n_mels", "64"]) == 1
    assert _errors(capsys) == [f"the model in {models / 'SynthFan'} was trained with other settings: feature.n_mels "
                               "(trained 128, now 64)"]  # fmt: skip


def _errors(capsys) -> list[str]:
    """The messages of the ERROR lines logged since the last call (by any logger)."""
    return [match[1] for match in re.finditer(r" ERROR [\w.]+: (.*)", capsys.readouterr().err)]
