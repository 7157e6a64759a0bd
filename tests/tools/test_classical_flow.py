"""01 -> 02 with the domain-aware classical system and several feature groups, on the demo corpus
(the real drivers' main()); bad `classical` values are one-line errors naming the valid ones."""

from __future__ import annotations

import csv
import math

import pytest
import yaml

from tools import test as test_driver
from tools import train as train_driver

MACHINE = "SynthFan"
CLASSICAL = ["--classical.domains", "separate", "--classical.features", "logmel_stats,modulation,impulsiveness"]


def _args(corpus, root) -> list[str]:
    return [
        "-d",
        "--system",
        "classical",
        "--data-root",
        str(corpus),
        "--machines",
        MACHINE,
        "--run.model_dir",
        str(root / "models"),
        "--run.result_dir",
        str(root / "results"),
        "--data.cache_dir",
        str(root / "cache"),
        "--data.workers",
        "1",
    ]


def test_train_and_test_with_separate_domains_and_feature_groups(demo_corpus, tmp_path, capsys):
    args = _args(demo_corpus, tmp_path) + CLASSICAL
    assert train_driver.main(args) == 0
    model = tmp_path / "models" / "dev_data" / "classical" / MACHINE
    trained = yaml.safe_load((model / "config.yaml").read_text())["classical"]
    assert trained["domains"] == "separate" and trained["features"] == ["logmel_stats", "modulation", "impulsiveness"]
    for scorer in ("gaussian", "knn"):
        assert test_driver.main(args + ["--score", scorer]) == 0
        out = tmp_path / "results" / "dev_data" / f"classical_{scorer}"
        rows = list(csv.reader((out / f"anomaly_score_{MACHINE}_section_00_test.csv").open()))
        assert len(rows) == len(list((demo_corpus / "dev_data" / "raw" / MACHINE / "test").glob("*.wav")))
        assert all(math.isfinite(float(score)) for _, score in rows)
        assert (out / "result.csv").is_file()
    assert "official score" in capsys.readouterr().err
    # the model is per domain: scoring it as a pooled one is refused, naming the key
    assert test_driver.main(_args(demo_corpus, tmp_path) + CLASSICAL[2:] + ["--classical.domains", "pooled"]) == 1
    assert "classical.domains (trained 'separate', now 'pooled')" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option, named",
    [
        (
            ["--classical.features", "logmel_stats,rhythm"],
            "config key 'classical.features' must be one of logmel_stats, modulation, impulsiveness, "
            "long_term_spectrum; got 'rhythm'",
        ),
        (
            ["--classical.domains", "both"],
            "config key 'classical.domains' must be one of pooled, separate; got 'both'",
        ),
        (["--classical.combine", "max"], "config key 'classical.combine' must be one of mean, concat; got 'max'"),
    ],
)
def test_an_unknown_feature_group_or_domains_value_is_a_one_line_error(demo_corpus, tmp_path, capsys, option, named):
    with pytest.raises(SystemExit) as exit_info:
        train_driver.main(_args(demo_corpus, tmp_path) + option)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and named in error_lines[0]
    assert not (tmp_path / "models").exists()
