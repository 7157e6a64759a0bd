"""Score the test clips and write the official files: `./02_test.sh -d|-e [--system NAME] [--score NAME]`.

Reads the trained models (`models/<dev|eval>_data/<system>/`) and `<raw>/<machine>/test/*.wav`;
writes to `results/<dev|eval>_data/<system>_<scorer>/`: per section the official
`anomaly_score_*` and `decision_result_*` CSVs (threshold: gamma fit to the training scores),
`ground_truth/` in the evaluator's layout when the clips are labelled (development data, or
evaluation data labelled with the official list), `result.csv` (official baseline layout) and
`config.yaml`. Metrics are computed from the written files, exactly as the evaluator does.
"""
from __future__ import annotations

import csv
import json
import logging
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import yaml

from datasets.audio import AudioError
from datasets.manifest import Clip, DatasetError, mode_flag, open_dataset
from networks.registry import get_system, resolve_scorer
from networks.system import ModelFileError, RunContext
from tools.cli import config_from_args, run_parser
from tools.atomic import write_csv
from tools.config import ConfigError, save_config
from tools.decision import decide, gamma_threshold
from tools.evaluate import GROUND_TRUTH_DIR, evaluate_folder, log_score_coverage
from tools.layout import COMPLETE_MARKER, TRAIN_SCORES_FILE, model_groups, model_root, result_dir
from tools.metrics import official_score, ranking_for_year
from tools.result_tables import result_rows
from tools.runtime import pick_device, seed_everything, setup_logging
from tools.submission import SectionTruth, SubmissionError, write_ground_truth, write_section_files

log = logging.getLogger("test")
RESULT_FILE = "result.csv"


def get_parser():
    return run_parser("02_test.sh", "Score test clips with a trained system and write the official submission files.")


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        cfg = config_from_args(parser, argv)
        system_cls = get_system(cfg.run.system)
        scorer = resolve_scorer(system_cls, cfg.score.method)
    except (ConfigError, KeyError) as e:
        parser.error(str(e).strip('"'))
    out = result_dir(cfg, scorer)
    setup_logging(out / "test.log")
    flag = mode_flag(cfg.run.mode)
    try:
        dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
    except DatasetError as e:
        log.error("%s", e)
        return 1
    device = pick_device(cfg.run.device)
    log.info("configuration: %s", json.dumps(cfg.to_dict()))
    seed_everything(cfg.run.seed, device)
    log.info("system %s, scorer %s, mode %s, data %s, device %s", cfg.run.system, scorer, cfg.run.mode, dataset.raw_dir, device)
    ctx = RunContext(cfg, device, dataset.expected_channels)
    try:
        truths = _score_all(cfg, system_cls, scorer, dataset, ctx, out, flag)
    except (DatasetError, AudioError, ModelFileError, SubmissionError) as e:
        log.error("%s", e)
        return 1
    save_config(cfg, out / "config.yaml")
    if not truths:
        log.info("test clips are unlabelled: submission files written, no metrics (label the evaluation "
                 "clips with ./00_download.sh -e --label to get them)")
        return 0
    try:
        results = evaluate_folder(out, truths, cfg.metrics.max_fpr)
    except SubmissionError as e:
        log.error("%s", e)
        return 1
    ranking = ranking_for_year(cfg.data.year)
    score = official_score(results, ranking)
    log_score_coverage(results, ranking)
    write_csv(out / RESULT_FILE, result_rows(results, ranking, score))
    log.info("official score (%s ranking): %.4f -> %s", ranking, score, out / RESULT_FILE)
    return 0


def _score_all(cfg, system_cls, scorer: str, dataset, ctx: RunContext, out: Path, flag: str) -> list[SectionTruth]:
    """Score every machine type's test clips, write the submission files; return the ground truth
    of the labelled sections."""
    truths: list[SectionTruth] = []
    for group, machines in model_groups(system_cls.scope, dataset.machines).items():
        model_dir = model_root(cfg) / group
        if not (model_dir / COMPLETE_MARKER).is_file():
            raise DatasetError(f"no trained model for {group} in {model_dir}: run ./01_train.sh {flag} "
                               f"--system {cfg.run.system} first")
        thresholds = _thresholds(model_dir / TRAIN_SCORES_FILE, scorer, cfg.decision.threshold_quantile)
        _check_trained_machines(model_dir, machines, {machine for machine, _ in thresholds}, flag, cfg.run.system)
        system = system_cls.load(model_dir, ctx)
        for machine in machines:
            clips = dataset.clips(machine, "test")
            log.info("Scoring %s: %d test clips -> %s", machine, len(clips), out)
            truths += _write_machine(out, machine, clips, system.score(clips, scorer), thresholds)
    return truths


def _check_trained_machines(model_dir: Path, machines: list[str], seen: set[str], flag: str, system: str) -> None:
    missing = [m for m in machines if m not in seen]
    if missing:
        trained = yaml.safe_load((model_dir / "config.yaml").read_text())
        raise DatasetError(
            f"machine type(s) {', '.join(missing)} were not in the training data of {model_dir} "
            f"(trained on {', '.join(sorted(seen))} from {trained['data']['root']}); "
            f"run ./01_train.sh {flag} --system {system} with the same data first"
        )


def _thresholds(scores_file: Path, scorer: str, quantile: float) -> dict[tuple[str, str], float]:
    """(machine, section) -> decision threshold fitted to that section's training scores."""
    by_section: dict[tuple[str, str], list[float]] = defaultdict(list)
    with scores_file.open(newline="") as f:
        for row in csv.DictReader(f):
            by_section[(row["machine"], row["section"])].append(float(row[scorer]))
    return {key: gamma_threshold(np.array(values), quantile) for key, values in by_section.items()}


def _write_machine(out: Path, machine: str, clips: list[Clip], scores: np.ndarray,
                   thresholds: dict[tuple[str, str], float]) -> list[SectionTruth]:
    truths = []
    for section in sorted({c.section for c in clips}):
        idx = [i for i, c in enumerate(clips) if c.section == section]
        if (machine, section) not in thresholds:
            raise DatasetError(f"{machine} section {section} has test clips but no training clips; cannot set a threshold")
        section_scores = scores[idx]
        decisions = decide(section_scores, thresholds[(machine, section)])
        names = [clips[i].name for i in idx]
        write_section_files(out, machine, section, names, section_scores, decisions)
        if all(clips[i].is_labelled for i in idx):
            truth = SectionTruth(machine, section, {clips[i].name: (clips[i].label == "anomaly", clips[i].domain == "target")
                                                    for i in idx})
            write_ground_truth(out / GROUND_TRUTH_DIR, truth)
            truths.append(truth)
    return truths


if __name__ == "__main__":
    sys.exit(main())
