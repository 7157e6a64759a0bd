"""The one path from a command line to the configuration, shared by every entry point.

Every setting is a key of `baseline.yaml`, set on the command line as `--section.key value` (or
`--section.key=value`). The short options users know (`-d`, `--year`, `--data-root`, `--system`,
...) are aliases of one key each (`OPTIONS`); an entry point offers those that make sense for it.
One precedence rule: `baseline.yaml` gives the defaults, a configuration file (`--config FILE`,
partial or whole, e.g. the best configuration `tools.tune` writes) is merged over it, then the command line is applied in its order, so when two options set the same key the
later one wins (`--year 2024 --data.year 2023` means 2023, in every entry point). Options that are
actions rather than settings (`--dry-run`, `--report FILE`) are the entry point's own argparse
arguments.

We keep this small layer on argparse instead of jsonargparse: our schema lives in
`baseline.yaml` (every key required there, one-line errors naming the key, checked by
`core.config`), which jsonargparse would move into the dataclasses' defaults; the whole command
line layer here is about 150 lines.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.config import DEFAULT_CONFIG, Config, ConfigError, load_config

_NO_VALUE = object()


@dataclass(frozen=True)
class Option:
    """A command-line alias of one configuration key."""

    flags: tuple[str, ...]
    key: str
    help: str
    const: object = _NO_VALUE  # a flag that takes no value and sets `key` to this


OPTIONS: dict[str, Option] = {
    o.flags[-1].lstrip("-").replace("-", "_"): o
    for o in (
        Option(("-d", "--dev"), "run.mode", "development data (run.mode dev)", const="dev"),
        Option(("-e", "--eval"), "run.mode", "evaluation data (run.mode eval)", const="eval"),
        Option(("--system",), "run.system", "system to run (run.system)"),
        Option(("--score",), "score.method", "scorer of the system (score.method)"),
        Option(("--data-root",), "data.root", "data root, dataset folder or folder of machine folders (data.root)"),
        Option(("--year",), "data.year", "DCASE Task 2 year (data.year)"),
        Option(("--machines",), "data.machines", "comma-separated machine types (data.machines)"),
        Option(("--device",), "run.device", "auto | cpu | cuda | cuda:N (run.device)"),
        Option(("--seed",), "run.seed", "random seed (run.seed)"),
        Option(("--model-dir",), "run.model_dir", "models root (run.model_dir)"),
        Option(("--result-dir",), "run.result_dir", "results root (run.result_dir)"),
        Option(("--force",), "run.force", "redo work that is already complete (run.force)", const=True),
        Option(("--jobs",), "download.jobs", "parallel downloads (download.jobs)"),
        Option(
            ("--label-list",),
            "download.label_list_url",
            "official label list of the evaluation clips: a file or an http(s) URL (download.label_list_url)",
        ),
        Option(("--max-fpr",), "metrics.max_fpr", "pAUC range (metrics.max_fpr)"),
    )
}


# The options of the entry points that train and score a system (01, 02 and the scoring commands).
RUN_OPTIONS = ["dev", "eval", "system", "score", "data_root", "year", "machines", "device", "force"]


class _SetKey(argparse.Action):
    """Appends (key, value) to `namespace.overrides` in command-line order."""

    def __init__(self, option_strings, dest, key: str, const=_NO_VALUE, **kwargs):
        self.key = key
        super().__init__(option_strings, dest, nargs=0 if const is not _NO_VALUE else None, const=const, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        value = self.const if self.nargs == 0 else _scalar(values)
        namespace.overrides = [*getattr(namespace, "overrides", []), (self.key, value)]


def command_parser(
    prog: str, description: str, options: list[str], mode_required: bool = False, epilog: str = ""
) -> argparse.ArgumentParser:
    """An argparse parser with `--config`, the named `OPTIONS` and every `--section.key` of the schema.

    `-d`/`-e` (when named) form a group that `mode_required` makes mandatory.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(epilog + "\n\n" if epilog else "") + "Any key of baseline.yaml can be set as --section.key value "
        "(e.g. --data.workers 4); later options win over earlier ones.",
    )
    parser.set_defaults(overrides=[])
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="configuration file merged over baseline.yaml; may hold only some keys (default: baseline.yaml)",
    )
    modes = [n for n in options if OPTIONS[n].key == "run.mode"]
    group = parser.add_mutually_exclusive_group(required=mode_required) if modes else None
    for name in options:
        option = OPTIONS[name]
        target = group if option.key == "run.mode" else parser
        metavar = None if option.const is not _NO_VALUE else option.flags[-1].lstrip("-").upper().replace("-", "_")
        target.add_argument(
            *option.flags,
            dest=f"option_{name}",
            action=_SetKey,
            key=option.key,
            const=option.const,
            metavar=metavar,
            help=option.help,
        )
    # Every key as an option of its own keeps the command line's order (later wins) and lets
    # argparse report a missing value; -h names them in the epilog instead of listing ~90 keys.
    for key in _schema_keys():
        parser.add_argument(f"--{key}", dest=f"key_{key}", action=_SetKey, key=key, help=argparse.SUPPRESS)
    return parser


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, Config]:
    """The entry point's own arguments and the validated configuration.

    Raises:
        ConfigError: an unknown key, a bad value, or an argument that is neither an option nor a key.
    """
    args, rest = parser.parse_known_args(argv)
    if rest:
        arg = rest[0]
        if not (arg.startswith("--") and "." in arg):
            raise ConfigError(
                f"unexpected argument {arg!r}: settings look like --section.key value (-h lists the options)"
            )
        load_config(args.config, {arg[2:].split("=", 1)[0]: None})  # raises, naming the unknown key
    return args, load_config(args.config, dict(args.overrides))


def _schema_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the configuration schema."""
    keys = []
    for field in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[field.name]
        if dataclasses.is_dataclass(hint):
            keys += _schema_keys(hint, f"{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


def _scalar(text: str) -> object:
    """A command-line value read as a YAML scalar: `3` an int, `null` None, `1e-3` stays text for
    the schema to read as a float, `fan,valve` text that a list key splits."""
    return yaml.safe_load(text) if text != "" else ""
