"""Search a system's hyper-parameters so that they carry over to unseen machine types:
`python -m tools.tune --system classical [--data-root DIR] [--trials N] [--folds K] ...`.

Reads the search space (`tuning/<system>.yaml`, or `--space FILE`) and the labelled development
clips; runs the nested cross-validation over machine types of `tuning.search` (one Optuna study
per fold, selecting on its training types and judged on its held-out types, then one study over
all types that selects the configuration to use). Writes, under `<out-dir>` (default `tune/`):
`<study>.db` (the Optuna studies; rerun the same command to resume a killed search, or with more
`--trials` to continue one), and in `<study>/`: `trials.csv`, `folds.csv`, `heldout.csv`,
`trials.png`, `best.yaml` (for `./01_train.sh -d --config FILE` and `./02_test.sh -d --config FILE`),
`tune.log`, and `evaluations/` (the scores of every configuration tried, per machine type, so that
nothing is trained twice). The tables are printed too.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
from pathlib import Path

import optuna
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from core.atomic import write_csv
from core.cli import command_parser, parse_command_line
from core.config import ConfigError
from core.runtime import pick_device, setup_logging
from datasets.audio import AudioError
from datasets.manifest import DatasetError, open_dataset
from networks.registry import get_system, resolve_scorer
from networks.system import Runtime
from reporting.metrics import official_score, ranking_for_year
from reporting.result_tables import markdown_table
from tuning.folds import FoldError, machine_type_folds
from tuning.report import fold_rows, heldout_rows, plot_search, pooled, trial_rows, write_best
from tuning.search import ALL, Search, StudyError, best_trial, exclusive, finished, fold_result, open_study, run_study
from tuning.space import SpaceError, default_space, load_space

log = logging.getLogger("tune")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def get_parser() -> argparse.ArgumentParser:
    parser = command_parser(
        "python -m tools.tune",
        "Search a system's hyper-parameters by cross-validation over machine types (Optuna); write the best "
        "configuration for ./01_train.sh --config.",
        ["system", "score", "data_root", "year", "machines", "device"],
        epilog="Rerun the same command to resume a killed search; raise --trials to continue a finished one.\n"
        "--score sets the scorer of the defaults (and of the trials, unless the space tunes score.method).",
    )
    parser.add_argument("--space", type=Path, help="search space (default: tuning/<system>.yaml)")
    parser.add_argument("--trials", type=_positive, help="trials per study (default: the space's 'trials')")
    parser.add_argument("--folds", type=_positive, default=3, help="folds over machine types (default: 3)")
    parser.add_argument("--study", help="name of the search (default: the system's name)")
    parser.add_argument("--out-dir", type=Path, default=Path("tune"), help="where searches live (default: tune)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = get_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, cfg = parse_command_line(parser, argv)
        system_cls = get_system(cfg.run.system)
        resolve_scorer(system_cls, cfg.score.method)
        space = load_space(args.space or default_space(cfg.run.system), system_cls, args.config)
    except (ConfigError, KeyError, SpaceError) as e:
        parser.error(str(e).strip('"'))
    setup_logging()
    try:
        dataset = open_dataset(cfg.data.root, cfg.data.year, cfg.run.mode, cfg.data.machines)
        folds = machine_type_folds(dataset.machines, args.folds, cfg.run.seed)
    except (DatasetError, FoldError) as e:
        log.error("%s", e)
        return 1
    name = args.study or cfg.run.system
    out = args.out_dir / name
    setup_logging(out / "tune.log")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial comes from us
    device = pick_device(cfg.run.device)
    log.info("configuration: %s", json.dumps(cfg.to_dict()))
    log.info("search space %s: %s", space.path, ", ".join(d.key for d in space.dimensions))
    for fold in folds:
        log.info("%s: select on %s; held out: %s", fold.name, ", ".join(fold.train), ", ".join(fold.held_out))
    search = Search(
        space,
        args.config,
        dict(args.overrides),
        dataset,
        Runtime(device, cfg.data, dataset.expected_channels),
        out / "evaluations",
    )
    budget = args.trials or space.trials
    plans = {fold.name: fold.train for fold in folds} | {ALL: tuple(dataset.machines)}
    database = args.out_dir / f"{name}.db"
    try:
        with exclusive(args.out_dir / f"{name}.lock"), logging_redirect_tqdm():
            studies = {n: open_study(database, n, search.identity(m), cfg.run.seed) for n, m in plans.items()}
            done = sum(min(finished(s), budget) for s in studies.values())
            with tqdm(total=budget * len(studies), initial=done, desc="trials", unit="trial") as bar:
                for n, study in studies.items():
                    run_study(study, search, plans[n], budget, on_trial=lambda _: bar.update(1))
            results = [fold_result(search, fold, studies[fold.name]) for fold in folds]
            final = best_trial(studies[ALL])
    except (StudyError, DatasetError, AudioError) as e:
        log.error("%s", e)
        return 1
    ranking = ranking_for_year(cfg.data.year)
    folds_table, heldout_table = fold_rows(results, ranking), heldout_rows(results, ranking)
    write_csv(out / "trials.csv", trial_rows(studies, space))
    write_csv(out / "folds.csv", folds_table)
    write_csv(out / "heldout.csv", heldout_table)
    plot_search(studies, results, ranking, out / "trials.png")
    tuned, defaults = (official_score(metrics, ranking) for metrics in pooled(results))
    best_cfg = search.config(final.params)
    best = write_best(
        out / "best.yaml",
        best_cfg,
        system_cls.section,
        resolve_scorer(system_cls, best_cfg.score.method),
        final,
        [
            f"Best configuration of the search {name!r}: python -m tools.tune {shlex.join(argv)}",
            f"selected on all {len(dataset.machines)} machine types ({', '.join(dataset.machines)}): official score "
            f"{final.value:.4f}, the score it was selected by (optimistic);",
            f"estimate on unseen machine types ({len(folds)}-fold cross-validation over machine types, see "
            f"folds.csv): {tuned:.4f}, hand-set defaults {defaults:.4f}.",
            "Use: ./01_train.sh -d --config FILE, then ./02_test.sh -d --config FILE",
        ],
    )
    print(markdown_table(folds_table), end="")
    print(markdown_table(heldout_table), end="")
    log.info(
        "held-out machine types, pooled over %d folds: official score %.4f tuned, %.4f defaults -> %s",
        len(folds),
        tuned,
        defaults,
        out / "folds.csv",
    )
    log.info("selected over all machine types: trial %d (%.4f) -> %s", final.number, final.value, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
