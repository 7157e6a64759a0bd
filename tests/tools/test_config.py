"""baseline.yaml -> Config: every key typed, unknown keys named, overrides last."""
from __future__ import annotations

import pytest
import yaml

from tools.cli import config_from_args, run_parser
from tools.config import DEFAULT_CONFIG, ConfigError, load_config, parse_overrides, save_config


def test_baseline_yaml_loads_with_the_official_defaults():
    cfg = load_config()
    assert (cfg.feature.n_fft, cfg.feature.hop_length, cfg.feature.n_mels, cfg.feature.power) == (1024, 512, 128, 2.0)
    assert cfg.run.seed == 13711 and cfg.decision.threshold_quantile == 0.9 and cfg.metrics.max_fpr == 0.1
    assert cfg.feature.fmax is None


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'data.machine'; valid keys in 'data': root, year, machines"):
        load_config(overrides={"data.machine": "fan"})
    with pytest.raises(ConfigError, match=r"unknown config key 'trian.epochs': there is no section 'trian'"):
        load_config(overrides={"trian.epochs": 3})
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["decision"]["threshold"] = 0.8
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="unknown config key 'decision.threshold'"):
        load_config(path)


def test_missing_key_and_wrong_types(tmp_path):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    del raw["feature"]["n_mels"]
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="config key 'feature.n_mels' is missing"):
        load_config(path)
    with pytest.raises(ConfigError, match="'data.year' must be an integer, got 'soon'"):
        load_config(overrides={"data.year": "soon"})
    with pytest.raises(ConfigError, match="'run.force' must be true or false"):
        load_config(overrides={"run.force": 1})


def test_overrides_parse_yaml_scalars_and_lists():
    overrides = parse_overrides(["--data.machines", "fan,valve", "--feature.power=1", "--feature.fmax", "null"])
    cfg = load_config(overrides=overrides)
    assert cfg.data.machines == ["fan", "valve"] and cfg.feature.power == 1.0 and cfg.feature.fmax is None
    assert load_config(overrides=parse_overrides(["--feature.fmin", "1e2"])).feature.fmin == 100.0
    with pytest.raises(ConfigError, match="'feature.fmin' must be a number, got 'low'"):
        load_config(overrides={"feature.fmin": "low"})
    with pytest.raises(ConfigError, match="overrides look like --section.key value"):
        parse_overrides(["--epochs", "3"])
    with pytest.raises(ConfigError, match="has no value"):
        parse_overrides(["--data.year"])


def test_command_line_precedence_and_shortcuts():
    parser = run_parser("x", "test")
    cfg = config_from_args(parser, ["-e", "--system", "classical", "--year", "2023", "--machines", "fan",
                                    "--data.workers", "5", "--force"])
    assert (cfg.run.mode, cfg.run.system, cfg.data.year, cfg.data.machines, cfg.data.workers, cfg.run.force) == (
        "eval", "classical", 2023, ["fan"], 5, True)
    with pytest.raises(SystemExit):
        config_from_args(parser, ["--system", "classical"])  # -d or -e is required


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(overrides={"data.machines": ["fan"], "classical.n_neighbors": 3})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
