"""Train and test several systems on one corpus with the real entry points and print one table.

    python -m datasets.shift_corpus --out data/shift
    python -m benchmarks.systems --data-root data/shift --workdir exp/benchmark_systems \\
        --system classical:gaussian,knn --system autoencoder:mahala,mse --system auxiliary:knn,mahala,softmax \\
        -- --autoencoder.epochs 10

Per `--system NAME:SCORER,...` it runs `./01_train.sh -d` once and `./02_test.sh -d --score SCORER`
per scorer, as a user would, with models, results and the feature cache under `--workdir`; the
options after `--` go to every 01/02 command (the test refuses a model trained with other settings,
so both get them). Without `--system`, every registered system except `beats` (which needs a
checkpoint) runs with all its scorers.

Each finished step is recorded in `<workdir>/steps.json` (wall time, peak memory of the command's
process tree, the command); a rerun skips recorded steps and measures the rest, so a benchmark of
hours survives a crash. The figures of a test step are read back from its result folder with the
evaluator's code (`reporting.evaluation`), not from the log.

Writes `name value unit` lines on stdout (`<system>_train_seconds`, `<system>_<scorer>_official`,
...) and a markdown table on stderr and in `<workdir>/table.md`: official score, AUC (source) and
AUC (target) harmonic means over all sections, pAUC harmonic mean, training and test wall time,
peak memory. The feature cache lives in the workdir, so the first test step of a corpus includes
the test clips' feature extraction and the first training step the training clips'.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.common import report
from core.atomic import write_text
from core.runtime import setup_logging
from networks.registry import SYSTEMS, get_system, resolve_scorer
from reporting.evaluation import evaluate_folder, load_truth
from reporting.metrics import hmean, official_score
from reporting.result_tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
STEPS_FILE = "steps.json"


@dataclass(frozen=True)
class Step:
    """One finished command: what ran, how long, how much memory its process tree peaked at."""

    command: list[str]
    seconds: float
    peak_rss_mib: float
    load_before: float
    load_after: float


def parse_system(spec: str) -> tuple[str, list[str]]:
    """`NAME[:SCORER,...]` -> (name, scorers); no scorers = all of the system's; unknown names raise
    a KeyError listing the valid ones."""
    name, _, scorers = spec.partition(":")
    system = get_system(name)
    if scorers:
        return name, [resolve_scorer(system, s) for s in scorers.split(",")]
    # scorers that need another setting (the autoencoder's elbo: a vae) only when asked for by name
    return name, [s for s in system.scorers if s not in system.scorer_needs]


def default_systems() -> list[str]:
    return [name for name in SYSTEMS if name != "beats"]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.systems",
        description=__doc__.split("\n\n")[0],
        epilog="Options after `--` are passed to every ./01_train.sh and ./02_test.sh command.",
    )
    parser.add_argument("--data-root", required=True, type=Path, help="corpus root (holds dev_data/raw/...)")
    parser.add_argument("--workdir", required=True, type=Path, help="models, results, cache and steps.json")
    parser.add_argument(
        "--system",
        action="append",
        dest="systems",
        metavar="NAME[:SCORER,...]",
        help=f"repeatable; default: {', '.join(default_systems())} with all their scorers",
    )
    return parser


def run_step(command: list[str], log_path: Path) -> Step:
    """Run `command` (its output to `log_path`), wait for it with wait4 so the peak memory is that
    of its own process tree (Linux folds reaped descendants into a child's rusage)."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {code}; see {log_path}")
    return Step(command, seconds, usage.ru_maxrss / 1024, load_before, os.getloadavg()[0])


def load_steps(workdir: Path) -> dict[str, Step]:
    path = workdir / STEPS_FILE
    if not path.exists():
        return {}
    return {key: Step(**value) for key, value in json.loads(path.read_text()).items()}


def save_steps(workdir: Path, steps: dict[str, Step]) -> None:
    write_text(workdir / STEPS_FILE, json.dumps({k: asdict(v) for k, v in steps.items()}, indent=1))


def common_options(args: argparse.Namespace, extra: list[str]) -> list[str]:
    work = args.workdir.resolve()
    return [
        "-d",
        "--data-root",
        str(args.data_root.resolve()),
        "--run.model_dir",
        str(work / "models"),
        "--run.result_dir",
        str(work / "results"),
        "--data.cache_dir",
        str(work / "cache"),
        *extra,
    ]


def result_figures(result_folder: Path) -> dict[str, float]:
    """Official score and harmonic means over all sections of the test run in `result_folder`."""
    results = evaluate_folder(result_folder, load_truth(result_folder))
    return {
        "official": official_score(results),
        "auc_source": hmean([r.auc["source"] for r in results]),
        "auc_target": hmean([r.auc["target"] for r in results]),
        "pauc": hmean([r.pauc for r in results]),
    }


def table_rows(plan: list[tuple[str, list[str]]], steps: dict[str, Step], figures: dict[str, dict]) -> list[list]:
    rows = [
        [
            "system",
            "scorer",
            "official score",
            "AUC (source)",
            "AUC (target)",
            "pAUC",
            "train (min)",
            "test (s)",
            "peak memory, train (GiB)",
        ]
    ]
    for name, scorers in plan:
        train = steps[f"{name}:train"]
        for scorer in scorers:
            f = figures[f"{name}:{scorer}"]
            test = steps[f"{name}:{scorer}"]
            rows.append(
                [
                    name,
                    scorer,
                    f["official"],
                    f["auc_source"],
                    f["auc_target"],
                    f["pauc"],
                    f"{train.seconds / 60:.1f}",  # strings: markdown_table shows floats as percent
                    f"{test.seconds:.0f}",
                    f"{train.peak_rss_mib / 1024:.2f}",
                ]
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = get_parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    setup_logging()
    try:
        plan = [parse_system(spec) for spec in args.systems or default_systems()]
    except KeyError as e:
        print(f"benchmarks.systems: {e.args[0]}", file=sys.stderr)
        return 2
    if not (args.data_root / "dev_data").is_dir():
        print(f"benchmarks.systems: {args.data_root} has no dev_data folder; make a corpus first", file=sys.stderr)
        return 2
    logs = args.workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    steps = load_steps(args.workdir)
    options = common_options(args, extra)
    figures = {}
    for name, scorers in plan:
        jobs = [(f"{name}:train", [str(ROOT / "01_train.sh"), *options, "--system", name])]
        jobs += [(f"{name}:{s}", [str(ROOT / "02_test.sh"), *options, "--system", name, "--score", s]) for s in scorers]
        for key, command in jobs:
            if key in steps and steps[key].command == command:
                print(f"# {key}: recorded, {steps[key].seconds:.0f} s", file=sys.stderr)
                continue
            print(f"# {key}: {' '.join(command)}", file=sys.stderr, flush=True)
            steps[key] = run_step(command, logs / f"{key.replace(':', '_')}.log")
            save_steps(args.workdir, steps)
        report(f"{name}_train_seconds", steps[f"{name}:train"].seconds, "s")
        report(f"{name}_train_peak_rss", steps[f"{name}:train"].peak_rss_mib, "MiB")
        for scorer in scorers:
            folder = args.workdir / "results" / "dev_data" / f"{name}_{scorer}"
            figures[f"{name}:{scorer}"] = result_figures(folder)
            report(f"{name}_{scorer}_test_seconds", steps[f"{name}:{scorer}"].seconds, "s")
            for figure, value in figures[f"{name}:{scorer}"].items():
                report(f"{name}_{scorer}_{figure}", value, "fraction")
    report("load_average_now", os.getloadavg()[0], "")
    report("peak_rss_self", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "MiB")
    table = markdown_table(table_rows(plan, steps, figures), digits=3)
    write_text(args.workdir / "table.md", table)
    print(table, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
