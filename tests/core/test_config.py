"""baseline.yaml -> Config: every key typed, choices and ranges checked, unknown keys named."""

from __future__ import annotations

import re

import pytest
import yaml

from core.config import DEFAULT_CONFIG, ConfigError, load_config, save_config


def test_baseline_yaml_loads_with_the_official_defaults():
    cfg = load_config()
    assert (cfg.feature.n_fft, cfg.feature.hop_length, cfg.feature.n_mels, cfg.feature.power) == (1024, 512, 128, 2.0)
    assert cfg.run.seed == 13711 and cfg.decision.threshold_quantile == 0.9 and cfg.metrics.max_fpr == 0.1
    assert cfg.feature.fmax is None


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown config key 'data.machine'; valid keys in 'data': root, year, machines"
    ):
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
        load_config(path, defaults=path)  # the defaults file must define every key
    with pytest.raises(ConfigError, match="'data.year' must be an integer, got 'soon'"):
        load_config(overrides={"data.year": "soon"})
    with pytest.raises(ConfigError, match="'run.force' must be true or false"):
        load_config(overrides={"run.force": 1})


def test_choices_and_ranges_are_checked_when_the_configuration_is_loaded():
    for key, value, message in [
        ("autoencoder.epochs", 0, "'autoencoder.epochs' must be >= 1, got 0"),
        ("autoencoder.epochs", -3, "'autoencoder.epochs' must be >= 1, got -3"),
        ("data.on_bad_file", "ignore", "'data.on_bad_file' must be one of error, skip; got 'ignore'"),
        ("beats.tuning", "full", "'beats.tuning' must be one of lora, finetune, frozen; got 'full'"),
        ("beats.augment", ["gaussian_noise", "reverb"], "'beats.augment' must be one of gaussian_noise, time_stretch"),
        (
            "classical.statistics",
            "mean,mode",
            "'classical.statistics' must be one of mean, std, max, min, median; got 'mode'",
        ),
        ("decision.threshold_quantile", 1.0, "'decision.threshold_quantile' must be < 1, got 1.0"),
        ("metrics.max_fpr", 0.0, "'metrics.max_fpr' must be > 0, got 0.0"),
        ("run.device", "gpu", "'run.device' must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        ("autoencoder.encoder_dims", [128, 0], "'autoencoder.encoder_dims' must be >= 1, got 0"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(overrides={key: value})
    cfg = load_config(overrides={"run.device": "cuda:1", "metrics.max_fpr": 1.0, "beats.tuning": "frozen"})
    assert (cfg.run.device, cfg.metrics.max_fpr, cfg.beats.tuning) == ("cuda:1", 1.0, "frozen")


def test_saved_config_reloads_identically(tmp_path):
    cfg = load_config(overrides={"data.machines": ["fan"], "classical.n_neighbors": 3})
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_a_partial_config_file_is_merged_over_baseline_yaml_and_checked(tmp_path):
    path = tmp_path / "tuned.yaml"
    path.write_text("run:\n  system: classical\nclassical:\n  n_neighbors: 4\n  statistics: [mean, max]\n")
    cfg = load_config(path, {"classical.n_neighbors": 5})
    default = load_config()
    assert (cfg.run.system, cfg.classical.statistics, cfg.classical.n_neighbors) == ("classical", ["mean", "max"], 5)
    assert cfg.classical.lof_neighbors == default.classical.lof_neighbors and cfg.feature == default.feature
    assert cfg.run.seed == default.run.seed
    for text, message in [
        ("classical:\n  n_neighbours: 4\n", "unknown config key 'classical.n_neighbours'; valid keys in 'classical'"),
        ("clasical:\n  n_neighbors: 4\n", "unknown config key 'clasical'; valid keys: run, data"),
        ("classical:\n  n_neighbors: 0\n", "'classical.n_neighbors' must be >= 1, got 0"),
        ("classical: 3\n", "config section 'classical' must be a mapping, got 3"),
        ("- 1\n", "must hold a mapping of sections"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path)
