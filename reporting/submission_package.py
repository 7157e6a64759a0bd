"""Lay out and check a DCASE Task 2 submission package: `<dir>/task2/<label>/`.

A package holds up to four system folders, each named with its submission label
(`Lastname_Institute_task2_N`) and holding the `anomaly_score_*`/`decision_result_*` file of every
machine type and section of the evaluation set and `<label>.meta.yaml`. `write_system` copies an
evaluation run's files and writes the meta file into a staging folder that replaces the system's
folder only when complete. `check_package` checks a package the way the organisers do: every
machine type and section of the evaluation set present, rows exactly the evaluation clips (no
header, no missing, extra or duplicate row), finite scores, 0/1 decisions, nothing else, and a
meta file with the official keys; the first problem is a one-line `SubmissionError` naming the file.
`evaluation_set` reads what the evaluation set holds from the test clips on disk and, for the
official data layout, the catalogue. The folder `<dir>/task2` is also what the official evaluator
takes as one team's folder: each label folder is a system to it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from core.atomic import replace_folder, write_text
from datasets.catalog import year_info
from datasets.manifest import DatasetError, official_raw_dir, open_dataset
from reporting.submission import DECISION_PREFIX, SCORE_PREFIX, SubmissionError, file_name, read_value_file
from reporting.submission_meta import LABEL, MAX_SYSTEMS, label_problem, meta_problem, placeholders

TASK_DIR = "task2"
META_SUFFIX = ".meta.yaml"
# (machine type, section) -> names of its evaluation test clips
EvaluationSet = dict[tuple[str, str], list[str]]


def evaluation_set(data_root: str | Path, year: int) -> EvaluationSet:
    """The machine types, sections and test clip names of the evaluation set under `data_root`.

    In the official layout (`<root>/dcase<year>t2/eval_data/raw/`) every machine type and section
    the catalogue lists for `year` must be there; in any other layout (your own or the demo data)
    the clips on disk are the evaluation set.

    Raises:
        SubmissionError: the evaluation test clips are not there, or some of the year's are missing.
    """
    try:
        dataset = open_dataset(data_root, year, "eval", [])
        found: EvaluationSet = {}
        for machine in dataset.machines:
            for clip in dataset.clips(machine, "test"):
                found.setdefault((machine, clip.section), []).append(clip.name)
    except DatasetError as e:
        raise SubmissionError(f"cannot read the evaluation set: {e}") from None
    if dataset.raw_dir == official_raw_dir(data_root, year, "eval"):
        known = year_info(year).eval_machines
        absent = [f"{m} section {s}" for m, sections in known.items() for s in sections if (m, s) not in found]
        if absent:
            raise SubmissionError(
                f"the DCASE{year} evaluation set has {', '.join(absent)}, whose test clips are not under "
                f"{dataset.raw_dir}: run ./00_download.sh -a -e --year {year}"
            )
    return found


def write_system(
    submission_dir: Path, label: str, results: Path, sections: list[tuple[str, str]], meta: dict, note: str = ""
) -> Path:
    """Copy the score and decision files of `sections` from `results` and write the meta file to
    `<submission_dir>/task2/<label>/`, replacing that folder whole.

    Args:
        note: a comment written at the top of the meta file (e.g. the development score).

    Raises:
        SubmissionError: the label is malformed or a file of the run is missing.
    """
    problem = label_problem(label)
    if problem:
        raise SubmissionError(problem)
    out = submission_dir / TASK_DIR / label
    staging = out.with_name(f".{label}.incomplete")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for machine, section in sections:
        for prefix in (SCORE_PREFIX, DECISION_PREFIX):
            name = file_name(prefix, machine, section)
            if not (results / name).is_file():
                raise SubmissionError(
                    f"{results / name} is missing: the package needs every machine type and section of the "
                    f"evaluation set; run ./02_test.sh -e with the settings of {results / 'config.yaml'}"
                )
            shutil.copy2(results / name, staging / name)
    header = "".join(f"# {line}\n" for line in note.splitlines())
    write_text(staging / f"{label}{META_SUFFIX}", header + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    replace_folder(staging, out)
    return out


def check_package(submission_dir: Path, expected: EvaluationSet) -> dict[str, list[str]]:
    """Check every system of a package against the evaluation set.

    Returns:
        label -> the meta keys still holding a placeholder (to fill before submitting).

    Raises:
        SubmissionError: the first problem found, naming the file.
    """
    task_dir = submission_dir / TASK_DIR
    if not task_dir.is_dir():
        raise SubmissionError(f"{submission_dir} has no {TASK_DIR}/ folder: lay one out with --submission-dir --label")
    entries = sorted(p for p in task_dir.iterdir() if not p.name.startswith("."))
    strays = [p for p in entries if not p.is_dir()]
    if strays:
        raise SubmissionError(f"{strays[0]} is not a system folder: {TASK_DIR}/ holds only <label>/ folders")
    if not entries:
        raise SubmissionError(f"{task_dir} holds no system folders")
    if len(entries) > MAX_SYSTEMS:
        raise SubmissionError(
            f"{task_dir} holds {len(entries)} systems ({', '.join(p.name for p in entries)}); "
            f"the rules allow {MAX_SYSTEMS} per task"
        )
    teams, indices = set(), set()
    for folder in entries:
        problem = label_problem(folder.name)
        if problem:
            raise SubmissionError(f"{folder}: {problem}")
        match = LABEL.match(folder.name)
        teams.add(match["team"])
        if match["index"] in indices:
            raise SubmissionError(f"{folder}: another system of this package has the index {match['index']}")
        indices.add(match["index"])
    if len(teams) > 1:
        raise SubmissionError(
            f"{task_dir}: the labels of one submission share Lastname_Institute, found {', '.join(sorted(teams))}"
        )
    return {folder.name: _check_system(folder, expected) for folder in entries}


def _check_system(folder: Path, expected: EvaluationSet) -> list[str]:
    wanted = {folder.name + META_SUFFIX}
    for (machine, section), names in sorted(expected.items()):
        score_file = folder / file_name(SCORE_PREFIX, machine, section)
        decision_file = folder / file_name(DECISION_PREFIX, machine, section)
        for path in (score_file, decision_file):
            if not path.is_file():
                raise SubmissionError(
                    f"{path} is missing: the evaluation set has {machine} section {section} ({len(names)} clips)"
                )
        read_value_file(score_file, expected=set(names))
        decisions = read_value_file(decision_file, expected=set(names))
        for line, (name, value) in enumerate(decisions.items(), start=1):
            if value not in (0, 1):
                raise SubmissionError(f"{decision_file}, line {line}: decision {value:g} for {name} is not 0 or 1")
        wanted |= {score_file.name, decision_file.name}
    extra = sorted(p.name for p in folder.iterdir() if p.name not in wanted)
    if extra:
        raise SubmissionError(
            f"{folder / extra[0]} is not a file of the submission (only the score and decision file of each "
            f"machine type and section of the evaluation set, and {folder.name}{META_SUFFIX})"
        )
    meta_file = folder / (folder.name + META_SUFFIX)
    if not meta_file.is_file():
        raise SubmissionError(f"{meta_file} is missing")
    try:
        meta = yaml.safe_load(meta_file.read_text())
    except yaml.YAMLError as e:
        raise SubmissionError(f"{meta_file} is not valid YAML: {' '.join(str(e).split())}") from None
    problem = meta_problem(meta, folder.name)
    if problem:
        raise SubmissionError(f"{meta_file} {problem}")
    return list(placeholders(meta))
