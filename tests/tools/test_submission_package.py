"""`03_summarize_results.sh -e --submission-dir --label`: the challenge package from real evaluation
runs of the classical system on the demo corpus, its check (`--check`), and what it refuses; and
summaries that evaluate each run with its own metric settings."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml

from datasets.demo_corpus import DEV_MACHINES, EVAL_MACHINES
from datasets.filenames import parse_file_name
from reporting.evaluation import evaluate_folder, load_truth
from reporting.result_tables import BASELINE_COLUMNS
from reporting.submission import SectionTruth, read_ground_truth, section_files, write_ground_truth
from reporting.submission_meta import REQUIRED_KEYS
from tests.conftest import ok, run_dirs, run_script
from tools import summarize

LABEL_1, LABEL_2 = "Smith_ACME_task2_1", "Smith_ACME_task2_2"
EVAL = sorted(m.name for m in EVAL_MACHINES)
DEV = sorted(m.name for m in DEV_MACHINES)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, demo_corpus):
    """Evaluation and development runs of classical knn (same settings) and classical gaussian
    (its development run made with --metrics.max_fpr 0.2), then a package of both."""
    root = tmp_path_factory.mktemp("submit")
    args = ["--system", "classical", "--data-root", str(demo_corpus), *run_dirs(root)]
    for mode in ("-e", "-d"):
        ok(run_script(["./01_train.sh", mode, *args]))
        ok(run_script(["./02_test.sh", mode, *args]))
    ok(run_script(["./02_test.sh", "-e", "--score", "gaussian", *args]))
    ok(run_script(["./02_test.sh", "-d", "--score", "gaussian", "--metrics.max_fpr", "0.2", *args]))
    package = ok(
        run_script(
            [
                "./03_summarize_results.sh",
                "-e",
                "--result-dir",
                str(root / "results"),
                "--submission-dir",
                str(root / "package"),
                "--label",
                f"{LABEL_1}=classical_knn",
                "--label",
                f"{LABEL_2}=classical_gaussian",
            ]
        )
    )
    return {"root": root, "results": root / "results", "package": root / "package", "log": package, "data": demo_corpus}


def _meta(package, label):
    return yaml.safe_load((package / "task2" / label / f"{label}.meta.yaml").read_text())


def _check(package, data, capsys) -> tuple[int, str]:
    code = summarize.main(["--check", str(package), "--data-root", str(data)])
    return code, capsys.readouterr().err


def test_the_package_holds_every_evaluation_file_and_passes_its_own_check(runs, capsys):
    for label, folder in ((LABEL_1, "classical_knn"), (LABEL_2, "classical_gaussian")):
        packed = runs["package"] / "task2" / label
        files = sorted(f"{k}_{m}_section_00_test.csv" for k in ("anomaly_score", "decision_result") for m in EVAL)
        assert sorted(p.name for p in packed.iterdir()) == sorted(files + [f"{label}.meta.yaml"])
        for name in files:  # the run's files, byte for byte
            assert (packed / name).read_bytes() == (runs["results"] / "eval_data" / folder / name).read_bytes()
    assert "2 system(s) pass the check (Smith_ACME_task2_1, Smith_ACME_task2_2)" in runs["log"].stdout
    assert "fill in before submitting (--meta FILE): submission.authors[0].firstname" in runs["log"].stderr
    code, err = _check(runs["package"], runs["data"], capsys)
    assert code == 0 and "ERROR" not in err


def _required(meta, required, where=""):
    for key, sub in required.items():
        assert key in meta, f"{where}{key}"
        if sub is not None:
            _required(meta[key], sub, f"{where}{key}.")


def test_meta_has_the_official_keys_and_the_development_results_of_the_run(runs):
    meta = _meta(runs["package"], LABEL_1)
    _required(meta, REQUIRED_KEYS)
    assert meta["submission"]["label"] == LABEL_1 and meta["submission"]["authors"][0]["lastname"] == "Smith"
    assert meta["system"]["description"]["input_sampling_rate"] == "16kHz"
    assert meta["system"]["description"]["machine_learning_method"] == "k-NN"
    # the development run's result.csv, read independently: each machine's arithmetic-mean row, in percent
    expected, machine = {}, None
    for row in csv.reader((runs["results"] / "dev_data" / "classical_knn" / "result.csv").open()):
        if len(row) == 1:
            machine = row[0]
        elif row and row[0] == "arithmetic mean":
            cells = dict(zip(BASELINE_COLUMNS, row))
            expected[machine] = {
                "auc_source": 100 * float(cells["AUC (source)"]),
                "auc_target": 100 * float(cells["AUC (target)"]),
                "pauc": 100 * float(cells["pAUC"]),
            }
    assert sorted(expected) == DEV
    assert meta["results"]["development_dataset"] == expected
    text = (runs["package"] / "task2" / LABEL_1 / f"{LABEL_1}.meta.yaml").read_text()
    assert text.startswith("# development results: ") and "(official score " in text.splitlines()[0]


def test_development_results_of_other_settings_are_left_out_naming_the_key(runs):
    assert _meta(runs["package"], LABEL_2)["results"]["development_dataset"] is None
    assert (
        f"WARNING summarize: {LABEL_2}: no development results: "
        f"{runs['results'] / 'dev_data' / 'classical_gaussian'} was made with other settings: "
        "metrics.max_fpr (evaluation 0.1, development 0.2)" in runs["log"].stderr
    )


def test_the_official_evaluators_layout_accepts_the_package(runs, tmp_path):
    """The evaluator takes `<dir>/task2` as a team folder and each label folder as a system: every
    machine type's files there, rows matched to its ground truth (built from the official-format
    label list) give the same metrics as the run's own files."""
    truths, machine = {}, None
    for row in csv.reader((runs["data"] / "eval_data_list_demo.csv").open()):
        if len(row) == 1:
            machine = row[0]
        else:
            fields = parse_file_name(row[1])
            truth = truths.setdefault(machine, {})
            truth[row[0]] = (fields.label == "anomaly", fields.domain == "target")
    for machine, labels in truths.items():
        (section,) = {parse_file_name(name).section for name in labels}
        write_ground_truth(tmp_path, SectionTruth(machine, section, labels))
    ground_truth = read_ground_truth(tmp_path)
    team = runs["package"] / "task2"
    for system in sorted(p for p in team.iterdir()):
        assert [m for m, _ in section_files(system)] == EVAL
        run = runs["results"] / "eval_data" / ("classical_knn" if system.name == LABEL_1 else "classical_gaussian")
        assert evaluate_folder(system, ground_truth) == evaluate_folder(run, ground_truth)


# damage -> (file named in the error, what the error says)
DAMAGES = {
    "missing file": (
        lambda d: (d / "anomaly_score_SynthBlower_section_00_test.csv").unlink(),
        "anomaly_score_SynthBlower_section_00_test.csv is missing: the evaluation set has SynthBlower section 00",
    ),
    "row missing": (
        lambda d: _edit(d / "anomaly_score_SynthConveyor_section_00_test.csv", lambda lines: lines[:-1]),
        "anomaly_score_SynthConveyor_section_00_test.csv lacks 1 row(s)",
    ),
    "nan": (
        lambda d: _edit(
            d / "anomaly_score_SynthBlower_section_00_test.csv", lambda ls: [_value(ls[0], "nan")] + ls[1:]
        ),
        "anomaly_score_SynthBlower_section_00_test.csv, line 1: value 'nan' is not a finite number",
    ),
    "header": (
        lambda d: _edit(
            d / "anomaly_score_SynthBlower_section_00_test.csv", lambda ls: ["file_name,anomaly_score"] + ls
        ),
        "anomaly_score_SynthBlower_section_00_test.csv, line 1: value 'anomaly_score' is not a number (no header",
    ),
    "decision 2": (
        lambda d: _edit(
            d / "decision_result_SynthConveyor_section_00_test.csv", lambda ls: ls[:2] + [_value(ls[2], "2")] + ls[3:]
        ),
        "decision_result_SynthConveyor_section_00_test.csv, line 3: decision 2 for section_00_",
    ),
    "foreign file": (
        lambda d: (d / "anomaly_score_SynthFan_section_00_test.csv").write_text("a.wav,0.1\n"),
        "anomaly_score_SynthFan_section_00_test.csv is not a file of the submission",
    ),
    "meta key missing": (
        lambda d: _edit_meta(d, lambda m: m["system"]["complexity"].pop("total_parameters")),
        f"{LABEL_1}.meta.yaml lacks the key system.complexity.total_parameters",
    ),
    "meta of another label": (
        lambda d: _edit_meta(d, lambda m: m["submission"].update(label=LABEL_2)),
        f"{LABEL_1}.meta.yaml submission.label is '{LABEL_2}', not the folder's name '{LABEL_1}'",
    ),
}


def _value(line: str, value: str) -> str:
    return line.rsplit(",", 1)[0] + "," + value


def _edit(path, change):
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def _edit_meta(folder, change):
    path = folder / f"{folder.name}.meta.yaml"
    meta = yaml.safe_load(path.read_text())
    change(meta)
    path.write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_package_fails_its_check_with_one_line_naming_the_file(runs, tmp_path, capsys, damage):
    package = tmp_path / "package"
    shutil.copytree(runs["package"], package)
    change, message = DAMAGES[damage]
    change(package / "task2" / LABEL_1)
    code, err = _check(package, runs["data"], capsys)
    errors = [line for line in err.splitlines() if " ERROR " in line]
    assert code == 1 and len(errors) == 1, err
    assert f"{package / 'task2' / LABEL_1}/" in errors[0] and message in errors[0], errors[0]


def test_a_package_of_five_systems_or_of_two_teams_is_refused(runs, tmp_path, capsys):
    package = tmp_path / "package"
    shutil.copytree(runs["package"], package)
    (package / "task2" / LABEL_2).rename(package / "task2" / "Jones_XYZ_task2_2")
    code, err = _check(package, runs["data"], capsys)
    assert code == 1 and "the labels of one submission share Lastname_Institute, found Jones_XYZ, Smith_ACME" in err
    for index in range(2, 6):
        shutil.copytree(package / "task2" / LABEL_1, package / "task2" / f"Smith_ACME_task2_{index}x")
    code, err = _check(package, runs["data"], capsys)
    assert code == 1 and "holds 6 systems" in err and "the rules allow 4 per task" in err


def test_user_meta_fills_the_placeholders_and_may_not_relabel(runs, tmp_path, capsys):
    mine = tmp_path / "mine.yaml"
    author = {
        "lastname": "Smith",
        "firstname": "Ada",
        "email": "ada@example.org",
        "corresponding": True,
        "affiliation": {"institution": "ACME", "department": "Acoustics", "location": "Berlin, Germany"},
    }
    mine.write_text(
        yaml.safe_dump(
            {
                "submission": {"authors": [author]},
                "system": {"complexity": {"total_parameters": 1234}, "source_code": None},
            }
        )
    )
    args = ["-e", "--result-dir", str(runs["results"]), "--no-plots", "--submission-dir", str(tmp_path / "p")]
    assert summarize.main([*args, "--label", f"{LABEL_1}=classical_knn", "--meta", str(mine)]) == 0
    err = capsys.readouterr().err
    meta = _meta(tmp_path / "p", LABEL_1)
    assert meta["submission"]["authors"] == [author] and meta["system"]["complexity"]["total_parameters"] == 1234
    assert meta["system"]["description"]["machine_learning_method"] == "k-NN"  # generated fields stay
    assert "fill in before submitting" not in err
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"submission": {"label": LABEL_2}}))
    assert summarize.main([*args, "--label", f"{LABEL_1}=classical_knn", "--meta", f"{LABEL_1}={other}"]) == 1
    assert f"--meta sets submission.label '{LABEL_2}' for the system labelled {LABEL_1}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "labels, message",
    [
        (["Smith_task2_1=classical_knn"], "submission label 'Smith_task2_1' must look like Lastname_Institute_task2_N"),
        (["Smith_ACME_task2_5=classical_knn"], "must look like Lastname_Institute_task2_N with N from 1 to 4"),
        ([LABEL_1], f"--label {LABEL_1} names no results folder and "),
        ([f"{LABEL_1}=classical_lof"], "present: classical_gaussian, classical_knn"),
        ([f"Smith_ACME_task2_{i}=classical_knn" for i in (1, 2, 3, 4, 4)], "5 labels given; the rules allow 4"),
    ],
)
def test_bad_labels_are_one_line_errors(runs, tmp_path, capsys, labels, message):
    args = ["-e", "--result-dir", str(runs["results"]), "--no-plots", "--submission-dir", str(tmp_path / "p")]
    assert summarize.main([*args, *[x for label in labels for x in ("--label", label)]]) == 1
    err = capsys.readouterr().err
    assert message in err and not (tmp_path / "p").exists()


def test_a_package_needs_evaluation_results(runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        summarize.main(
            ["-d", "--result-dir", str(runs["results"]), "--submission-dir", str(tmp_path), "--label", LABEL_1]
        )
    assert stop.value.code == 2 and "a submission package holds evaluation results: add -e" in capsys.readouterr().err


def test_the_summary_uses_each_runs_own_max_fpr(runs):
    """classical_gaussian's development run used --metrics.max_fpr 0.2; 03 without that option
    gives the pAUC of its result.csv (and not the pAUC at 0.1)."""
    out = runs["root"] / "summary"
    ok(run_script(["./03_summarize_results.sh", "--result-dir", str(runs["results"]), "--no-plots", "--out", str(out)]))
    rows = {(r[0], r[1]): r for r in csv.reader((out / "dev_summary.csv").open())}
    header = next(csv.reader((out / "dev_summary.csv").open()))
    own, machine = {}, None
    for row in csv.reader((runs["results"] / "dev_data" / "classical_gaussian" / "result.csv").open()):
        if len(row) == 1:
            machine = row[0]
        elif row and row[0] == "arithmetic mean":
            own[machine] = float(dict(zip(BASELINE_COLUMNS, row))["pAUC"])
    summary = rows[("classical_gaussian", "pAUC (source, target)")]
    assert {m: float(summary[header.index(m)]) for m in DEV} == own
    folder = runs["results"] / "dev_data" / "classical_gaussian"
    at_01 = {r.machine: r.pauc for r in evaluate_folder(folder, load_truth(folder), max_fpr=0.1)}
    assert at_01 != own
