"""Own data whose test sections lack a class, and non-finite scores, through the real entry points:
undefined metrics are named and left empty, broken score files and broken systems stop with a
one-line error naming the file and line, or the clip."""

from __future__ import annotations

import csv
import shutil
import sys

import joblib
import numpy as np
import pytest

from reporting.metrics import hmean
from tests.conftest import result_figures, run_script

SYSTEM = ["--system", "classical", "--score", "gaussian"]


def _ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UndefinedMetricWarning" not in result.stderr and "Traceback" not in result.stderr
    return result


def _fails_in_one_line(result, message: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def own_run(demo_corpus, tmp_path_factory):
    """Two machine types of own data: SynthFan without target-domain anomalies, SynthGearbox without
    any anomaly; trained, scored, summarised and evaluated once."""
    root = tmp_path_factory.mktemp("own")
    for machine, drop in (("SynthFan", "*_target_test_anomaly_*"), ("SynthGearbox", "*_test_anomaly_*")):
        shutil.copytree(demo_corpus / "dev_data" / "raw" / machine, root / "data" / machine)
        for clip in (root / "data" / machine / "test").glob(drop):
            clip.unlink()
    args = [
        "-d",
        "--data-root",
        str(root / "data"),
        "--run.model_dir",
        str(root / "models"),
        "--run.result_dir",
        str(root / "results"),
        "--data.cache_dir",
        str(root / "cache"),
        *SYSTEM,
    ]
    _ok(run_script(["./01_train.sh", *args]))
    out = root / "results" / "dev_data" / "classical_gaussian"
    return {
        "root": root,
        "args": args,
        "out": out,
        "test": _ok(run_script(["./02_test.sh", *args])),
        "summary": _ok(run_script(["./03_summarize_results.sh", "--result-dir", str(root / "results")])),
        "evaluate": _ok(
            run_script([sys.executable, "-m", "tools.evaluate", str(out), "--report", str(root / "report.csv")])
        ),
    }


def test_sections_lacking_a_class_are_named_and_their_metrics_left_empty(own_run):
    for step in ("test", "summary", "evaluate"):
        warnings = "\n".join(line for line in own_run[step].stderr.splitlines() if "WARNING" in line)
        assert (
            "SynthFan section 00: target domain has no anomalous clips: pAUC (target), "
            "AUC over target clips (2021 ranking) undefined"
        ) in warnings
        assert "SynthGearbox section 00: section has no anomalous clips: every AUC and pAUC undefined" in warnings
    rows = list(csv.reader((own_run["out"] / "result.csv").open()))
    fan = rows[rows.index(["SynthFan"]) + 2]
    gearbox = rows[rows.index(["SynthGearbox"]) + 2]
    assert gearbox[:6] == ["00", "", "", "", "", ""]
    assert all(fan[1:4]) and fan[5] == ""  # AUC (source), AUC (target), pAUC defined; pAUC (target) not
    score = result_figures(own_run["out"])["official"]
    assert score == pytest.approx(hmean([float(v) for v in fan[1:4]]), abs=1e-12)
    assert "official score over the 3 defined of its 6 AUC/pAUC values (dcase2022 ranking)" in own_run["test"].stderr
    assert f"official score (dcase2022 ranking): {score:.4f}" in own_run["test"].stderr
    assert "classical_gaussian: TOTAL score over the 3 defined of its 6" in own_run["summary"].stderr
    table = [line for line in own_run["summary"].stdout.splitlines() if line.startswith("| classical_gaussian |")]
    assert len(table) == 4 and all(line.endswith("|  |") for line in table)  # the SynthGearbox column is empty
    assert own_run["evaluate"].stdout == f"official score {score}\n"
    report = list(csv.reader((own_run["root"] / "report.csv").open()))
    assert ["official score", "", repr(score)] in report


def test_an_official_score_with_no_defined_value_is_said_to_be_undefined(own_run, tmp_path):
    for path in own_run["out"].glob("*_SynthGearbox_section_00_test.csv"):
        shutil.copy(path, tmp_path / path.name)
    result = _ok(run_script([sys.executable, "-m", "tools.evaluate", str(tmp_path)]))
    assert "official score undefined: none of its 3 AUC/pAUC values (dcase2022 ranking) is defined" in result.stderr
    assert result.stdout == "official score nan\n"


def test_a_score_file_with_nan_names_the_file_and_line(own_run, tmp_path):
    results = tmp_path / "results"
    out = results / "dev_data" / "classical_gaussian"
    shutil.copytree(own_run["out"], out)
    scores = out / "anomaly_score_SynthFan_section_00_test.csv"
    lines = scores.read_text().splitlines(keepends=True)
    lines[2] = lines[2].split(",")[0] + ",nan\n"
    scores.write_text("".join(lines))
    message = f"{scores}, line 3: value 'nan' is not a finite number"
    _fails_in_one_line(run_script([sys.executable, "-m", "tools.evaluate", str(out)]), message)
    _fails_in_one_line(run_script(["./03_summarize_results.sh", "--result-dir", str(results), "--no-plots"]), message)


def test_a_system_producing_non_finite_scores_stops_before_writing_them(own_run, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(own_run["root"] / "models", models)
    model_file = models / "dev_data" / "classical" / "SynthFan" / "classical.joblib"
    state = joblib.load(model_file)
    for bank in state["banks"]["gaussian"].banks_.values():  # a damaged model: every score becomes non-finite
        bank["detectors"][0].location_[0] = np.inf
    joblib.dump(state, model_file)
    args = list(own_run["args"])
    args[args.index("--run.model_dir") + 1] = str(models)
    args[args.index("--run.result_dir") + 1] = str(tmp_path / "results")
    error = _fails_in_one_line(
        run_script(["./02_test.sh", *args]), "SynthFan section 00: the system produced a non-finite score"
    )
    assert "for section_00_source_test_" in error and "retrain the model" in error
    assert not list((tmp_path / "results").rglob("anomaly_score_SynthFan_*"))
