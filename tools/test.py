"""Score the test clips and write the official files: `./02_test.sh -d|-e [--system NAME] [--score NAME]`.

Reads the trained models (`models/<dev|eval>_data/<system>/`) and `<raw>/<machine>/test/*.wav`;
writes to `results/<dev|eval>_data/<system>_<scorer>/`: per section the official
`anomaly_score_*` and `decision_result_*` CSVs (threshold: gamma fit to the training scores),
`ground_truth/` in the evaluator's layout when the clips are labelled (development data, or
evaluation data labelled with the official list), `result.csv` (official baseline layout) and
`config.yaml`. Metrics are computed from the written files, exactly as the evaluator does.

A run is written into `<folder>.incomplete/` and moved into place only when complete, so a results
folder always holds one whole run. The model must have been trained with the settings of this
command line, except the test-time ones (scorer, decision, metrics and each system's
`test_time_keys`): otherwise the error names the differing keys and the training command.
"""

from __future__ import annotations

import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np

from core.atomic import replace_folder, write_csv
from core.cli import RUN_OPTIONS, command_parser, parse_command_line
from core.config import ConfigError, save_config
from core.layout import INCOMPLETE_SUFFIX, model_groups, model_root, result_dir
from core.runtime import pick_device, seed_everything, setup_logging
from datasets.audio import AudioError
from datasets.manifest import Clip, DatasetError, open_dataset
from networks.registry import get_system, resolve_scorer
from networks.system import ModelFileError, Runtime
from networks.trained import load_trained
from reporting.decision import decide, section_thresholds
from reporting.evaluation import GROUND_TRUTH_DIR, evaluate_folder, log_score_coverage
from reporting.metrics import official_score, ranking_for_year
from reporting.result_tables import result_rows
from reporting.submission import SectionTruth, SubmissionError, write_ground_truth, write_section_files

log = logging.getLogger("test")
RESULT_FILE = "result.csv"
# What a training command does not take from a test command line: the scorer and the test-time sections.
TEST_ONLY = ("--score", "--result-dir", "--run.result_dir")
TEST_ONLY_SECTIONS = ("--score.", "--decision.", "--metrics.")
FLAGS = ("-d", "--dev", "-e", "--eval", "--force")  # options that take no value


def get_parser():
    return command_parser(
        "02_test.sh",
        "Score test clips with a trained system and write the official submission files.",
        RUN_OPTIONS,
        mode_required=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _, cfg = parse_command_line(parser, argv)
        system_cls = get_system(cfg.run.system)
        scorer = resolve_scorer(system_cls, cfg.score.method, getattr(cfg, system_cls.section))
        system_cls.member_configs(cfg)  # an ensemble's unknown member is a usage error before any work
    except (ConfigError, KeyError) as e:
        parser.error(str(e).strip('"'))
    setup_logging()
    device = pick_device(cfg.run.device)  # before the staging folder: a device this machine lacks leaves none
    try:
        dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
    except DatasetError as e:
        log.error("%s", e)
        return 1
    out = result_dir(cfg, scorer)
    # The run is written into a staging folder that replaces `out` only when complete, so a
    # results folder always holds one whole run; a failed run leaves `<out>.incomplete` behind.
    staging = out.with_name(out.name + INCOMPLETE_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    setup_logging(staging / "test.log")
    log.info("configuration: %s", json.dumps(cfg.to_dict()))
    seed_everything(cfg.run.seed, device)
    log.info(
        "system %s, scorer %s, mode %s, data %s, device %s",
        cfg.run.system,
        scorer,
        cfg.run.mode,
        dataset.raw_dir,
        device,
    )
    runtime = Runtime(device, cfg.data, dataset.expected_channels)
    try:
        truths = _score_all(cfg, system_cls, scorer, dataset, runtime, staging)
        save_config(cfg, staging / "config.yaml")
        if truths:
            results = evaluate_folder(staging, truths, cfg.metrics.max_fpr)
            ranking = ranking_for_year(cfg.data.year)
            score = official_score(results, ranking)
            log_score_coverage(results, ranking)
            log.info("Stage %d: metrics: %s -> %s", len(dataset.machines) + 1, staging, out / RESULT_FILE)
            write_csv(staging / RESULT_FILE, result_rows(results, ranking, score))
    except ModelFileError as e:
        log.error("%s: retrain with %s", e, retrain_command(argv))
        return _failed(staging)
    except (DatasetError, AudioError, SubmissionError) as e:
        log.error("%s", e)
        return _failed(staging)
    replace_folder(staging, out)
    if not truths:
        log.info(
            "test clips are unlabelled: submission files written to %s, no metrics (label the evaluation clips "
            "with ./00_download.sh -e --year %d, or python -m tools.label_eval --year %d)",
            out,
            cfg.data.year,
            cfg.data.year,
        )
        return 0
    log.info("official score (%s ranking): %.4f -> %s", ranking, score, out / RESULT_FILE)
    return 0


def retrain_command(argv: list[str]) -> str:
    """The training command for the data and settings of this test command line (its test-time
    options left out), so an error can say exactly what to run."""
    kept, i = [], 0
    while i < len(argv):
        arg = argv[i]
        key = arg.split("=", 1)[0]
        takes_value = "=" not in arg and key.startswith("--") and key not in FLAGS
        if key in TEST_ONLY or key.startswith(TEST_ONLY_SECTIONS):
            i += 2 if takes_value else 1
            continue
        kept += argv[i : i + (2 if takes_value else 1)]
        i += 2 if takes_value else 1
    return " ".join(["./01_train.sh", *map(shlex.quote, kept), "--force"])


def _failed(staging: Path) -> int:
    log.warning("incomplete results left in %s", staging)
    return 1


def _score_all(cfg, system_cls, scorer: str, dataset, runtime: Runtime, out: Path) -> list[SectionTruth]:
    """Score every machine type's test clips, write the submission files; return the ground truth
    of the labelled sections."""
    truths: list[SectionTruth] = []
    stage = 0
    for group, machines in model_groups(system_cls.scope, dataset.machines).items():
        trained = load_trained(model_root(cfg) / group, system_cls, scorer).use_settings(cfg)
        trained_machines = sorted({machine for machine, _ in trained.sections})
        missing = sorted(set(machines) - set(trained_machines))
        if missing:
            raise ModelFileError(
                f"machine type(s) {', '.join(missing)} were not in the training data of {trained.folder} "
                f"(trained on {', '.join(trained_machines)})"
            )
        thresholds = section_thresholds(trained.train_scores, cfg.decision.threshold_quantile)
        for machine in machines:
            stage += 1
            clips = dataset.clips(machine, "test")
            log.info(
                "Stage %d: score %s: %d test clips in %s -> %s",
                stage,
                machine,
                len(clips),
                dataset.raw_dir / machine,
                out,
            )
            truths += _write_machine(out, machine, clips, trained.system.score(clips, scorer, runtime), thresholds)
    return truths


def _write_machine(
    out: Path, machine: str, clips: list[Clip], scores: np.ndarray, thresholds: dict[tuple[str, str], float]
) -> list[SectionTruth]:
    truths = []
    for section in sorted({c.section for c in clips}):
        idx = [i for i, c in enumerate(clips) if c.section == section]
        if (machine, section) not in thresholds:
            raise DatasetError(
                f"{machine} section {section} has test clips but no training clips; cannot set a threshold"
            )
        section_scores = scores[idx]
        decisions = decide(section_scores, thresholds[(machine, section)])
        names = [clips[i].name for i in idx]
        write_section_files(out, machine, section, names, section_scores, decisions)
        if all(clips[i].is_labelled for i in idx):
            truth = SectionTruth(
                machine,
                section,
                {clips[i].name: (clips[i].label == "anomaly", clips[i].domain == "target") for i in idx},
            )
            write_ground_truth(out / GROUND_TRUTH_DIR, truth)
            truths.append(truth)
    return truths


if __name__ == "__main__":
    sys.exit(main())
