"""Fold the results of one or more systems into the official summary table and plots, and lay out
or check a challenge submission package: `./03_summarize_results.sh [-d|-e]`.

Reads every results folder `results/<dev|eval>_data/<system>_<scorer>/` (submission CSVs, their
`ground_truth/` and the run's `config.yaml`), evaluating the files exactly as the official
evaluator does with the metric settings that run used, so each system's rows equal its
`result.csv`. Writes to `results/summary/`: `<mode>_summary.csv`
(`System,metric,h-mean,a-mean,<machine>...`), `<mode>_summary.md`, and
`plots/<mode>_data/<system>/<machine>.png`; prints the Markdown table.

With `-e --submission-dir DIR --label LABEL[=FOLDER]` (up to four labels), lays out
`DIR/task2/<label>/`: the evaluation run's score and decision files and `<label>.meta.yaml`, filled
from the run's `config.yaml` and the `result.csv` of the development run of the same folder name
and settings (`--meta [LABEL=]FILE` merges your own fields over it), then checks the package.
`--check DIR` checks an existing package against the evaluation set under `--data-root`/`--year`.
"""

from __future__ import annotations

import argparse
import logging
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
from reporting.metrics import SectionMetrics, ranking_for_year
from reporting.result_tables import markdown_table, summary_rows
from reporting.submission import SubmissionError, section_files
from reporting.submission_meta import (
    MAX_SYSTEMS,
    DevResults,
    build_meta,
    label_problem,
    merge_meta,
    read_dev_results,
    settings_differences,
)
from reporting.submission_package import check_package, evaluation_set, write_system

log = logging.getLogger("summarize")
RUN_CONFIG = "config.yaml"
RESULT_FILE = "result.csv"


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


def run_config(folder: Path) -> dict | None:
    """The resolved configuration a results folder was made with, or None (files from elsewhere)."""
    path = folder / RUN_CONFIG
    if not path.is_file():
        return None
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SubmissionError(f"{path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(config, dict) or not all(k in config for k in ("run", "data", "metrics")):
        raise SubmissionError(f"{path} is not a configuration written by ./02_test.sh (no run, data or metrics)")
    return config


def machine_order(folders: list[Path], mode: str) -> list[str]:
    """Machine columns: the catalogue's order for the year the results came from, then any others."""
    present = sorted({m for d in folders for m, _ in section_files(d)})
    order: list[str] = []
    for folder in folders:
        try:
            config = run_config(folder)
            if config is not None:
                order += list(year_info(int(config["data"]["year"])).machines(mode))
        except (ValueError, KeyError, TypeError):  # SubmissionError included: no order from a broken config
            pass
    order = [m for m in dict.fromkeys(order) if m in present]
    return order + [m for m in present if m not in order]


def label_folders(specs: list[str], eval_dir: Path) -> dict[str, Path]:
    """`LABEL` or `LABEL=FOLDER` options -> the evaluation results folder of each label. A bare
    label takes the only results folder there is."""
    present = sorted(d for d in eval_dir.glob("*") if d.is_dir() and section_files(d)) if eval_dir.is_dir() else []
    names = ", ".join(d.name for d in present) or "none"
    if len(specs) > MAX_SYSTEMS:
        raise SubmissionError(f"{len(specs)} labels given; the rules allow {MAX_SYSTEMS} systems per task")
    chosen: dict[str, Path] = {}
    for spec in specs:
        label, _, folder = spec.partition("=")
        problem = label_problem(label)
        if problem:
            raise SubmissionError(problem)
        if label in chosen:
            raise SubmissionError(f"label {label} is given twice")
        if not folder:
            if len(present) != 1:
                raise SubmissionError(
                    f"--label {label} names no results folder and {eval_dir} holds {len(present)}: "
                    f"write --label {label}=FOLDER with FOLDER one of: {names}"
                )
            folder = present[0].name
        path = eval_dir / folder
        if path not in present:
            raise SubmissionError(f"no evaluation results in {path} (--label {spec}); present: {names}")
        chosen[label] = path
    return chosen


def user_meta(specs: list[str], labels: list[str]) -> dict[str, dict]:
    """`--meta FILE` (every label) and `--meta LABEL=FILE` (that label, applied after) -> label ->
    the user's fields, merged in that order."""
    shared: list[dict] = []
    own: dict[str, list[dict]] = {label: [] for label in labels}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if sep and label in own:
            own[label].append(_read_user_meta(Path(path)))
        else:
            shared.append(_read_user_meta(Path(spec)))
    merged = {}
    for label in labels:
        fields: dict = {}
        for part in shared + own[label]:
            fields = merge_meta(fields, part)
        given = fields.get("submission", {}).get("label") if isinstance(fields.get("submission"), dict) else None
        if given not in (None, label):
            raise SubmissionError(
                f"--meta sets submission.label {given!r} for the system labelled {label}: remove the label "
                f"from the file (--label sets it)"
            )
        merged[label] = fields
    return merged


def _read_user_meta(path: Path) -> dict:
    try:
        meta = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SubmissionError(f"meta file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise SubmissionError(f"meta file {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if not isinstance(meta, dict):
        raise SubmissionError(f"meta file {path} must hold a mapping (submission, system, results)")
    return meta


def development_results(folder: Path, config: dict, result_root: Path) -> tuple[DevResults | None, str]:
    """The development results of the system of an evaluation results folder: the dev folder of the
    same name, if it was made with the same settings; and a line saying where they came from."""
    dev_folder = result_root / "dev_data" / folder.name
    dev_config = run_config(dev_folder)
    if dev_config is None or not (dev_folder / RESULT_FILE).is_file():
        return None, f"no development results: {dev_folder} has no {RESULT_FILE} and {RUN_CONFIG}"
    from networks.registry import get_system  # here: it loads torch, which the summary alone never needs

    try:
        ignore = get_system(config["run"]["system"]).test_time_keys
    except KeyError:
        ignore = ()
    differences = settings_differences(config, dev_config, ignore)
    if differences:
        return None, f"no development results: {dev_folder} was made with other settings: {'; '.join(differences)}"
    dev = read_dev_results(dev_folder / RESULT_FILE)
    score = "undefined" if dev.official_score is None else f"{100 * dev.official_score:.2f} %"
    return dev, f"development results: {dev_folder / RESULT_FILE} (official score {score})"


def make_package(args: argparse.Namespace, result_root: Path) -> None:
    """Lay out `<submission-dir>/task2/<label>/` for every label, then check the whole package."""
    chosen = label_folders(args.label, result_root / "eval_data")
    fields = user_meta(args.meta, list(chosen))
    configs = {}
    for label, folder in chosen.items():
        config = run_config(folder)
        if config is None:
            raise SubmissionError(f"{folder / RUN_CONFIG} is missing: rerun ./02_test.sh -e for {folder.name}")
        configs[label] = config
    years = {int(c["data"]["year"]) for c in configs.values()}
    if len(years) > 1:
        raise SubmissionError(f"the labelled runs are of different years ({', '.join(map(str, sorted(years)))})")
    first = next(iter(configs.values()))
    expected = evaluation_set(first["data"]["root"], int(first["data"]["year"]))
    for label, folder in chosen.items():
        config = configs[label]
        dev, note = development_results(folder, config, result_root)
        (log.info if dev else log.warning)("%s: %s", label, note)
        scorer = folder.name.removeprefix(f"{config['run']['system']}_")
        meta = merge_meta(build_meta(label, config, scorer, dev), fields[label])
        out = write_system(args.submission_dir, label, folder, sorted(expected), meta, note)
        log.info("%s: %s -> %s", label, folder, out)
    report_check(args.submission_dir, expected)


def report_check(submission_dir: Path, expected: dict) -> None:
    """Check a package; log the meta fields still to fill and print one line per system."""
    unfilled = check_package(submission_dir, expected)
    for label, keys in unfilled.items():
        if keys:
            log.warning("%s: fill in before submitting (--meta FILE): %s", label, ", ".join(keys))
    clips = sum(len(names) for names in expected.values())
    print(
        f"{submission_dir}: {len(unfilled)} system(s) pass the check ({', '.join(unfilled)}): "
        f"{len({m for m, _ in expected})} machine types, {len(expected)} sections, {clips} clips each"
    )


def get_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "03_summarize_results.sh", __doc__.split("\n\n")[0], ["dev", "eval", "result_dir", "data_root", "year"]
    )
    parser.add_argument("--systems", default="", help="comma-separated result folder names (default: all)")
    parser.add_argument("--out", type=Path, help="summary folder (default: <result-dir>/summary)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--submission-dir", type=Path, help="lay out a submission package <dir>/task2/<label>/ (-e)")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="LABEL[=FOLDER]",
        help=f"submission label (Lastname_Institute_task2_N) and its results folder under <result-dir>/eval_data; "
        f"up to {MAX_SYSTEMS}",
    )
    parser.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="[LABEL=]FILE",
        help="your meta fields (authors, ...) merged over the generated <label>.meta.yaml",
    )
    parser.add_argument(
        "--check", type=Path, metavar="DIR", help="check the package DIR against the evaluation set and exit"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    try:
        args, cfg = parse_command_line(parser, argv)
    except ConfigError as e:
        parser.error(str(e))
    mode, result_root = cfg.run.mode, Path(cfg.run.result_dir)
    if args.check:
        setup_logging()
        try:
            report_check(args.check, evaluation_set(cfg.data.root, cfg.data.year))
        except SubmissionError as e:
            log.error("%s", e)
            return 1
        return 0
    if bool(args.submission_dir) != bool(args.label) or (args.meta and not args.label):
        parser.error("a submission package needs both --submission-dir DIR and --label LABEL[=FOLDER] (--meta too)")
    if args.submission_dir and mode != "eval":
        parser.error("a submission package holds evaluation results: add -e")
    out = args.out or result_root / "summary"
    setup_logging(out / "summarize.log")
    explicit_fpr = dict(args.overrides).get("metrics.max_fpr")
    try:
        folders = result_folders(result_root, mode, [s for s in args.systems.split(",") if s])
        systems: dict[str, list[SectionMetrics]] = {}
        rankings: dict[str, str] = {}
        log.info("Stage 1: evaluate: %s -> %s", ", ".join(str(f) for f in folders), out)
        for folder in folders:
            try:
                truths = load_truth(folder)
            except SubmissionError as e:
                log.info("%s: no ground truth (%s); left out of the table", folder.name, e)
                continue
            config = run_config(folder)
            # The run's own metric settings, so the table equals its result.csv.
            max_fpr = config["metrics"]["max_fpr"] if config else cfg.metrics.max_fpr
            if explicit_fpr is not None and config and float(explicit_fpr) != max_fpr:
                log.warning(
                    "%s was made with metrics.max_fpr %s; its table uses that, not %s",
                    folder.name,
                    max_fpr,
                    explicit_fpr,
                )
            rankings[folder.name] = ranking_for_year(int(config["data"]["year"])) if config else "dcase2022"
            sections = read_sections(folder, truths)
            results = evaluate_sections(sections, max_fpr)
            log_score_coverage(results, rankings[folder.name], f"{folder.name}: TOTAL score")
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
                        max_fpr,
                    )
        if args.submission_dir:
            log.info("Stage 2: submission package: %s -> %s", ", ".join(args.label), args.submission_dir / "task2")
            make_package(args, result_root)
    except SubmissionError as e:
        log.error("%s", e)
        return 1
    if not systems:
        log.info("no labelled results to summarise")
        return 0
    rows = summary_rows(systems, machine_order(folders, mode), rankings)
    write_csv(out / f"{mode}_summary.csv", rows)
    table = markdown_table(rows)
    write_text(out / f"{mode}_summary.md", table)
    print(table)
    log.info("summary -> %s", out / f"{mode}_summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
