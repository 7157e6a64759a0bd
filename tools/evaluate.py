"""Evaluate a folder of submission files exactly like the official DCASE evaluator.

    python -m tools.evaluate results/dev_data/classical_knn
    python -m tools.evaluate teams/myteam/system1 --ground-truth dcase2024_task2_evaluator --report out.csv

Reads the folder's `anomaly_score_*`/`decision_result_*` files and its ground truth (see
`reporting.evaluation`); prints the official score; writes the evaluator's report with `--report`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.atomic import write_csv
from core.cli import command_parser, parse_command_line
from core.config import ConfigError
from core.runtime import setup_logging
from reporting.evaluation import evaluate_sections, load_truth, log_score_coverage, pooled_ci95, read_sections
from reporting.metrics import official_score
from reporting.result_tables import evaluator_rows
from reporting.submission import SubmissionError

log = logging.getLogger("evaluate")


def get_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m tools.evaluate", __doc__.split("\n\n")[0], ["max_fpr"])
    parser.add_argument("score_dir", type=Path, help="folder with anomaly_score_* and decision_result_* files")
    parser.add_argument("--ground-truth", type=Path, help="folder with ground_truth_data/ and ground_truth_domain/")
    parser.add_argument("--report", type=Path, help="write the evaluator's <system>_result.csv layout here")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        args, cfg = parse_command_line(parser, argv)
    except ConfigError as e:
        parser.error(str(e))
    setup_logging()
    max_fpr = cfg.metrics.max_fpr
    try:
        sections = read_sections(args.score_dir, load_truth(args.score_dir, args.ground_truth))
        results = evaluate_sections(sections, max_fpr)
    except SubmissionError as e:
        log.error("%s", e)
        return 1
    score = official_score(results)
    log_score_coverage(results, "dcase2022")
    if args.report:
        write_csv(args.report, evaluator_rows(results, pooled_ci95(sections, max_fpr)))
        log.info("report -> %s", args.report)
    print(f"official score {score}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
