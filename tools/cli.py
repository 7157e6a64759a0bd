"""The command line shared by the train and test entry points: `-d/-e`, the short options users
know from the official baseline, and `--section.key value` overrides of `baseline.yaml`."""
from __future__ import annotations

import argparse
from pathlib import Path

from tools.config import DEFAULT_CONFIG, Config, load_config, parse_overrides

# Short option -> configuration key it sets.
SHORTCUTS = {
    "system": "run.system",
    "score": "score.method",
    "data_root": "data.root",
    "year": "data.year",
    "machines": "data.machines",
    "device": "run.device",
}


def run_parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Any key of baseline.yaml can be overridden as --section.key value, e.g. --data.workers 4.",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("-d", "--dev", dest="mode", action="store_const", const="dev", help="development data")
    mode.add_argument("-e", "--eval", dest="mode", action="store_const", const="eval", help="evaluation data")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="configuration file (default: baseline.yaml)")
    parser.add_argument("--system", help="system to run (run.system)")
    parser.add_argument("--score", help="scorer of the system (score.method)")
    parser.add_argument("--data-root", help="data root, dataset folder or folder of machine folders (data.root)")
    parser.add_argument("--year", help="DCASE Task 2 year (data.year)")
    parser.add_argument("--machines", help="comma-separated machine types (data.machines)")
    parser.add_argument("--device", help="auto | cpu | cuda (run.device)")
    parser.add_argument("--force", action="store_true", help="redo work that is already complete (run.force)")
    return parser


def config_from_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> Config:
    """Parse `argv`: known options, then overrides; build the validated configuration."""
    args, extra = parser.parse_known_args(argv)
    overrides = {"run.mode": args.mode}
    for option, key in SHORTCUTS.items():
        value = getattr(args, option)
        if value is not None:
            overrides[key] = parse_overrides([f"--{key}", value])[key]
    if args.force:
        overrides["run.force"] = True
    overrides.update(parse_overrides(extra))
    return load_config(args.config, overrides)
