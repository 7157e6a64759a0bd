"""Fold the results of one or more systems into the official summary table, plots and,
optionally, an evaluator-ready submission folder: `./03_summarize_results.sh [-d|-e]`.

Reads every results folder `results/<dev|eval>_data/<system>_<scorer>/` (submission CSVs and
their `ground_truth/`), evaluating the files exactly as the official evaluator does. Writes to
`results/summary/`: `<mode>_summary.csv` (`System,metric,h-mean,a-mean,<machine>...`),
`<mode>_summary.md`, and `plots/<mode>_data/<system>/<machine>.png`; prints the Markdown table.
With `--submission-dir DIR --team NAME`, copies each system's official CSVs to
`DIR/<team>/<system>/`, the layout the official evaluator globs.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import yaml

from core.atomic import write_csv, write_text
from core.cli import command_parser, parse_command_line
from core.config import ConfigError
from core.runtime import setup_logging
from datasets.catalog import year_info
from datasets.manifest import mode_flag
from reporting.evaluation import evaluate_sections, load_truth, log_score_coverage, read_sections
from reporting.metrics import SectionMetrics
from reporting.result_tables import markdown_table, summary_rows
from reporting.submission import DECISION_PREFIX, SCORE_PREFIX, SubmissionError, file_name, section_files

log = logging.getLogger("summarize")


def result_folders(result_root: Path, mode: str, systems: list[str]) -> list[Path]:
    """Results folders of `mode` holding submission files, optionally only the named systems."""
    base = result_root / f"{mode}_data"
    found = sorted(d for d in base.glob("*") if d.is_dir() and section_files(d)) if base.is_dir() else []
    if systems:
        missing = [s for s in systems if not (base / s).is_dir()]
        if missing:
            raise SubmissionError(
                f"no results for {', '.join(missing)} under {base}; present: "
                f"{', '.join(d.name for d in found) or 'none'}"
            )
        found = [base / s for s in systems]
    if not found:
        flag = mode_flag(mode)
        raise SubmissionError(f"no results under {base}: run ./01_train.sh {flag} and ./02_test.sh {flag} first")
    return found


def machine_order(folders: list[Path], mode: str) -> list[str]:
    """Machine columns: the catalogue's order for the year the results came from, then any others."""
    present = sorted({m for d in folders for m, _ in section_files(d)})
    order: list[str] = []
    for folder in folders:
        config = folder / "config.yaml"
        if config.is_file():
            try:
                order += list(year_info(int(yaml.safe_load(config.read_text())["data"]["year"])).machines(mode))
            except (ValueError, KeyError, TypeError):
                pass
    order = [m for m in dict.fromkeys(order) if m in present]
    return order + [m for m in present if m not in order]


def package_submission(folder: Path, submission_dir: Path, team: str) -> Path:
    """Copy a system's official CSVs (nothing else) to `<submission_dir>/<team>/<system>/`."""
    if "_" in team:
        raise SubmissionError(f"team name {team!r} must not contain '_'")
    out = submission_dir / team / folder.name
    out.mkdir(parents=True, exist_ok=True)
    for machine, section in section_files(folder):
        for prefix in (SCORE_PREFIX, DECISION_PREFIX):
            name = file_name(prefix, machine, section)
            if not (folder / name).is_file():
                raise SubmissionError(f"{folder / name} is missing; the evaluator would skip this system")
            shutil.copy2(folder / name, out / name)
    return out


def get_parser() -> argparse.ArgumentParser:
    parser = command_parser("03_summarize_results.sh", __doc__.split("\n\n")[0], ["dev", "eval", "result_dir"])
    parser.add_argument("--systems", default="", help="comma-separated result folder names (default: all)")
    parser.add_argument("--out", type=Path, help="summary folder (default: <result-dir>/summary)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--submission-dir", type=Path, help="also lay out <dir>/<team>/<system>/ for the evaluator")
    parser.add_argument("--team", default="", help="team name for --submission-dir")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        args, cfg = parse_command_line(parser, argv)
    except ConfigError as e:
        parser.error(str(e))
    mode, result_root = cfg.run.mode, Path(cfg.run.result_dir)
    out = args.out or result_root / "summary"
    setup_logging(out / "summarize.log")
    if args.submission_dir and not args.team:
        log.error("--submission-dir needs --team NAME")
        return 2
    try:
        folders = result_folders(result_root, mode, [s for s in args.systems.split(",") if s])
        systems: dict[str, list[SectionMetrics]] = {}
        log.info("Stage 1: evaluate: %s -> %s", ", ".join(str(f) for f in folders), out)
        if args.submission_dir:
            log.info(
                "Stage 2: submission: %s -> %s", ", ".join(str(f) for f in folders), args.submission_dir / args.team
            )
        for folder in folders:
            if args.submission_dir:
                log.info("submission -> %s", package_submission(folder, args.submission_dir, args.team))
            try:
                truths = load_truth(folder)
            except SubmissionError as e:
                log.info("%s: no ground truth (%s); left out of the table", folder.name, e)
                continue
            sections = read_sections(folder, truths)
            results = evaluate_sections(sections)
            log_score_coverage(results, "dcase2022", f"{folder.name}: TOTAL score")
            systems[folder.name] = results
            if not args.no_plots:
                from reporting.plots import plot_machine  # here: matplotlib is slow to import and --no-plots needs none

                for machine in dict.fromkeys(s.machine for s in sections):
                    mine = [i for i, s in enumerate(sections) if s.machine == machine]
                    plot_machine(
                        [sections[i] for i in mine],
                        [results[i] for i in mine],
                        folder.name,
                        out / "plots" / f"{mode}_data" / folder.name / f"{machine}.png",
                    )
    except SubmissionError as e:
        log.error("%s", e)
        return 1
    if not systems:
        log.info("no labelled results to summarise")
        return 0
    rows = summary_rows(systems, machine_order(folders, mode))
    write_csv(out / f"{mode}_summary.csv", rows)
    table = markdown_table(rows)
    write_text(out / f"{mode}_summary.md", table)
    print(table)
    log.info("summary -> %s", out / f"{mode}_summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
