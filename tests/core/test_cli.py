"""The one command line -> configuration path: aliases of dotted keys, later options win, clear errors."""

from __future__ import annotations

import pytest

from core.cli import OPTIONS, RUN_OPTIONS, command_parser, parse_command_line
from core.config import ConfigError


def _parse(argv: list[str], options=RUN_OPTIONS, mode_required=True):
    return parse_command_line(command_parser("x", "test", options, mode_required=mode_required), argv)[1]


def test_aliases_and_dotted_keys_read_yaml_scalars_and_lists():
    cfg = _parse(
        [
            "-e",
            "--system",
            "classical",
            "--year",
            "2023",
            "--machines",
            "fan,valve",
            "--data.workers",
            "5",
            "--force",
            "--feature.power=1",
            "--feature.fmax",
            "null",
            "--feature.fmin",
            "1e2",
        ]
    )
    assert (cfg.run.mode, cfg.run.system, cfg.data.year, cfg.data.machines, cfg.data.workers, cfg.run.force) == (
        "eval",
        "classical",
        2023,
        ["fan", "valve"],
        5,
        True,
    )
    assert (cfg.feature.power, cfg.feature.fmax, cfg.feature.fmin) == (1.0, None, 100.0)


def test_the_later_option_wins_whether_alias_or_dotted_key():
    assert _parse(["-d", "--year", "2024", "--data.year", "2023"]).data.year == 2023
    assert _parse(["-d", "--data.year", "2023", "--year", "2024"]).data.year == 2024
    assert _parse(["-d", "--data-root", "a", "--data.root=b"]).data.root == "b"


def test_every_alias_names_a_real_key_and_each_entry_point_offers_only_its_own():
    keys = _parse(["-d"]).to_dict()
    for name, option in OPTIONS.items():
        section, key = option.key.split(".")
        assert key in keys[section], name
    parser = command_parser("x", "test", ["year"])
    with pytest.raises(ConfigError, match="unexpected argument '--machines'"):
        parse_command_line(parser, ["--machines", "fan"])
    assert parse_command_line(parser, [])[1].run.mode == "dev"  # baseline.yaml's default when -d/-e are not offered


def test_errors_name_the_key_or_argument():
    with pytest.raises(ConfigError, match="unknown config key 'data.yer'; valid keys in 'data': root, year"):
        _parse(["-d", "--data.yer", "3"])
    with pytest.raises(ConfigError, match="unknown config key 'trian.epochs': there is no section 'trian'"):
        _parse(["-d", "--trian.epochs", "3"])
    with pytest.raises(ConfigError, match="unexpected argument 'extra'"):
        _parse(["-d", "extra"])
    with pytest.raises(ConfigError, match="'autoencoder.epochs' must be >= 1, got 0"):
        _parse(["-d", "--autoencoder.epochs", "0"])
    with pytest.raises(SystemExit):
        _parse(["--system", "classical"])  # -d or -e is required
    with pytest.raises(SystemExit):
        _parse(["-d", "--data.year"])  # no value


def test_help_lists_the_aliases_and_explains_dotted_keys(capsys):
    with pytest.raises(SystemExit):
        command_parser("01_train.sh", "Train.", RUN_OPTIONS, mode_required=True).parse_args(["-h"])
    text = capsys.readouterr().out
    assert "--data-root DATA_ROOT" in text and "(data.root)" in text and "--section.key value" in text
    assert "later options win" in text and "--data.workers" not in text.split("options:")[1].split("Any key")[0]
