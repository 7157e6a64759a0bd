"""The ensemble system through the real entry points on the demo corpus, with two cheap members
(the classical system's gaussian and knn scorers): 01 trains the members into their own folders and
fits the fusion, 02 writes the official files with each fusion, 03 summarises; the fused scores
are recomputed here from the members' own score files and training scores; weights; refusals."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from reporting.decision import gamma_threshold
from tests.conftest import ok, result_figures, run_dirs, run_script

DEV_MACHINES = ["SynthFan", "SynthGearbox", "SynthPump", "SynthValve"]
MEMBERS = ["gaussian", "knn"]  # scorers of the classical system
ENSEMBLE = ["--system", "ensemble", "--ensemble.members", "classical:gaussian,classical:knn", "--data.workers", "1"]


def _scores(path: Path) -> dict[str, float]:
    """name -> score of an official anomaly-score file."""
    return {name: float(score) for name, score in csv.reader(path.open())}


def _train_rows(model_dir: Path) -> list[dict]:
    with (model_dir / "train_scores.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _standardised(results: Path, models: Path, scorer: str, machine: str) -> dict[str, float]:
    """The member's own test scores, standardised by its training scores' mean and population
    standard deviation (section 00 is the only section of the demo corpus)."""
    train = np.array([float(r[scorer]) for r in _train_rows(models / "classical" / machine)])
    mean, std = train.mean(), max(train.std(), 1e-6)
    own = _scores(results / f"classical_{scorer}" / f"anomaly_score_{machine}_section_00_test.csv")
    return {name: (value - mean) / std for name, value in own.items()}


@pytest.fixture(scope="module")
def flow(demo_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    base = ["-d", "--data-root", str(demo_corpus), *run_dirs(root)]
    args = [*base, *ENSEMBLE]
    train = ok(run_script(["./01_train.sh", *args]))
    rerun = ok(run_script(["./01_train.sh", *args]))
    tests = {f: ok(run_script(["./02_test.sh", *args, "--score", f])) for f in ("mean", "max")}
    for scorer in MEMBERS:  # the members' own results, to recompute the fusion from
        ok(run_script(["./02_test.sh", *base, "--system", "classical", "--score", scorer, "--data.workers", "1"]))
    summary = ok(run_script(["./03_summarize_results.sh", "-d", "--result-dir", str(root / "results"), "--no-plots"]))
    return {
        "root": root,
        "base": base,
        "args": args,
        "train": train,
        "rerun": rerun,
        "tests": tests,
        "summary": summary,
        "models": root / "models" / "dev_data",
        "results": root / "results" / "dev_data",
    }


def test_members_train_into_their_own_folders_and_the_ensemble_beside_them(flow):
    models = flow["models"]
    for machine in DEV_MACHINES:
        member = models / "classical" / machine
        for name in (".completed", "config.yaml", "train_scores.csv", "classical.joblib"):
            assert (member / name).is_file(), member / name
        assert "system: classical" in (member / "config.yaml").read_text()
        ensemble = models / "ensemble" / machine
        for name in (".completed", "config.yaml", "train_scores.csv", "ensemble.json"):
            assert (ensemble / name).is_file(), ensemble / name
        rows = _train_rows(ensemble)
        assert len(rows) == 64 and list(rows[0])[4:] == ["mean", "max"]
    assert (models / "classical" / "train.log").is_file() and (models / "ensemble" / "train.log").is_file()
    assert "classical SynthFan: skipping, already trained" in flow["rerun"].stderr
    assert "SynthValve: skipping, already trained" in flow["rerun"].stderr
    assert "Stage" not in flow["rerun"].stderr


@pytest.mark.parametrize("fusion", ["mean", "max"])
def test_fused_scores_are_the_fusion_of_the_members_standardised_scores(flow, fusion):
    combine = {"mean": np.mean, "max": np.max}[fusion]
    for machine in DEV_MACHINES:
        members = [_standardised(flow["results"], flow["models"], s, machine) for s in MEMBERS]
        fused = _scores(flow["results"] / f"ensemble_{fusion}" / f"anomaly_score_{machine}_section_00_test.csv")
        assert len(fused) == 48 and fused.keys() == members[0].keys()
        for name, value in fused.items():
            assert value == pytest.approx(combine([m[name] for m in members]), rel=1e-9, abs=1e-9), name


def test_training_scores_and_decisions_are_fused_the_same_way(flow):
    for machine in DEV_MACHINES:
        member = _train_rows(flow["models"] / "classical" / machine)
        fused = _train_rows(flow["models"] / "ensemble" / machine)
        assert [r["name"] for r in fused] == [r["name"] for r in member]
        standardised = []
        for scorer in MEMBERS:
            values = np.array([float(r[scorer]) for r in member])
            standardised.append((values - values.mean()) / values.std())
        expected_mean = np.mean(standardised, axis=0)
        np.testing.assert_allclose([float(r["mean"]) for r in fused], expected_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose([float(r["max"]) for r in fused], np.max(standardised, axis=0), atol=1e-9)
        # The threshold is the gamma quantile of the fused training scores, as for every system.
        out = flow["results"] / "ensemble_mean"
        threshold = gamma_threshold(expected_mean, 0.9)
        scores = _scores(out / f"anomaly_score_{machine}_section_00_test.csv")
        decisions = {n: int(d) for n, d in csv.reader((out / f"decision_result_{machine}_section_00_test.csv").open())}
        assert decisions == {n: int(s > threshold) for n, s in scores.items()}


# Measured on the demo corpus (seed 0): classical gaussian 0.795, knn 0.687, the mean and max
# fusions 0.795 (the gaussian member's in-sample training statistics make its standardised test
# scores far larger than the knn member's: it dominates; see README, Ensembles).
def test_official_files_result_and_summary(flow):
    for fusion in ("mean", "max"):
        out = flow["results"] / f"ensemble_{fusion}"
        assert (out / "config.yaml").is_file() and (out / "ground_truth").is_dir()
        score = result_figures(out)["official"]
        assert score > 0.70
        assert f"official score (dcase2022 ranking): {score:.4f}" in flow["tests"][fusion].stderr
        assert f"| ensemble_{fusion} | TOTAL score |" in flow["summary"].stdout
    official = {name: result_figures(flow["results"] / name)["official"] for name in ("ensemble_mean", "classical_knn")}
    assert official["ensemble_mean"] >= official["classical_knn"]


def test_weights_refit_only_the_fusion_and_weigh_the_members(flow, tmp_path):
    root = tmp_path / "weighted"
    shutil.copytree(flow["root"] / "models", root / "models")
    args = [*flow["args"], "--run.model_dir", str(root / "models"), "--run.result_dir", str(root / "results")]
    args += ["--ensemble.weights", "3,1"]
    train = ok(run_script(["./01_train.sh", *args]))
    assert "classical SynthFan: skipping, already trained" in train.stderr
    assert "Stage 1: train SynthFan" in train.stderr
    ok(run_script(["./02_test.sh", *args, "--score", "mean"]))
    ok(run_script(["./02_test.sh", *args, "--score", "max"]))
    for machine in DEV_MACHINES:
        gaussian, knn = (_standardised(flow["results"], flow["models"], s, machine) for s in MEMBERS)
        name = f"anomaly_score_{machine}_section_00_test.csv"
        mean, largest = (_scores(root / "results" / "dev_data" / f"ensemble_{f}" / name) for f in ("mean", "max"))
        for clip in gaussian:
            assert mean[clip] == pytest.approx((3 * gaussian[clip] + knn[clip]) / 4, rel=1e-9, abs=1e-9)
            assert largest[clip] == pytest.approx(max(3 * gaussian[clip], knn[clip]), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("members", "message"),
    [
        ("classical:gaussian,forest:knn", "unknown system 'forest' in 'forest:knn'; valid: autoencoder, classical"),
        ("classical:nope", "has no scorer 'nope'; valid: knn, lof, iforest, gaussian"),
        ("ensemble:mean", "unknown system 'ensemble'"),
        ("classical:knn,classical:knn", "names classical:knn twice"),
    ],
)
@pytest.mark.parametrize("script", ["./01_train.sh", "./02_test.sh"])
def test_unknown_or_repeated_members_are_refused_by_name_before_any_work(tmp_path, members, message, script):
    args = ["-d", "--data-root", str(tmp_path / "nothing"), "--system", "ensemble", "--ensemble.members", members]
    result = run_script([script, *args])
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "nothing").exists()


def test_weights_of_another_count_are_refused(flow):
    result = run_script(["./01_train.sh", *flow["args"], "--ensemble.weights", "1,2,3"])
    assert result.returncode == 2
    assert "ensemble.weights has 3 values for 2 members (classical:gaussian, classical:knn)" in result.stderr


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (["--feature.n_mels", "64"], "feature.n_mels (trained 128, now 64)"),
        (["--classical.n_neighbors", "3"], "member classical: classical.n_neighbors (trained 1, now 3)"),
        (["--ensemble.members", "classical:gaussian"], "ensemble.members"),
    ],
)
def test_scoring_with_other_settings_than_the_ensemble_or_its_members_is_refused_by_name(flow, override, named):
    result = run_script(["./02_test.sh", *flow["args"], *override, "--score", "mean"])
    assert result.returncode == 1
    assert named in result.stderr and "was trained with other settings" in result.stderr
    assert "retrain with ./01_train.sh" in result.stderr


def test_a_member_retrained_on_other_data_is_refused_until_01_trains_it_again(flow, tmp_path):
    """Someone retrains the classical system on another corpus into the same models folder: the
    ensemble's statistics no longer describe its scores, so 02 refuses; 01 retrains the member."""
    from datasets.demo_corpus import write_corpus

    other = write_corpus(tmp_path / "other", seed=1)
    models = tmp_path / "models"
    shutil.copytree(flow["root"] / "models", models)
    dirs = ["--run.model_dir", str(models), "--run.result_dir", str(tmp_path / "results")]
    ok(run_script(["./01_train.sh", *flow["base"], *dirs, "--data-root", str(other), "--system", "classical"]))
    args = [*flow["args"], *dirs]
    refused = run_script(["./02_test.sh", *args, "--score", "mean"])
    assert refused.returncode == 1
    assert "member classical in" in refused.stderr and "was retrained (or removed) after the ensemble" in refused.stderr
    retrain = ok(run_script(["./01_train.sh", *args]))
    assert "Stage 1: train classical SynthFan" in retrain.stderr
    ok(run_script(["./02_test.sh", *args, "--score", "mean"]))
    again = result_figures(tmp_path / "results" / "dev_data" / "ensemble_mean")
    assert again["official"] == result_figures(flow["results"] / "ensemble_mean")["official"]


def test_a_member_retrained_with_other_settings_makes_01_refit_the_ensemble(flow, tmp_path):
    """The ensemble's own fingerprint covers only its section: a member retrained since (here with
    another k) makes its stored model unusable, so 01 refits it instead of skipping it."""
    models = tmp_path / "models"
    shutil.copytree(flow["root"] / "models", models)
    args = [*flow["args"], "--run.model_dir", str(models), "--run.result_dir", str(tmp_path / "results")]
    args += ["--classical.n_neighbors", "3"]
    ok(run_script(["./01_train.sh", *args, "--system", "classical"]))
    refit = ok(run_script(["./01_train.sh", *args]))
    assert "classical SynthFan: skipping, already trained" in refit.stderr
    assert "SynthFan: retraining, the stored model is unusable: member classical in" in refit.stderr
    ok(run_script(["./02_test.sh", *args, "--score", "mean"]))
