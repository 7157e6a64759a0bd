"""Search-space files: parsing into Optuna distributions and configuration values, and one-line
errors that name the file and key for everything a run would refuse."""

from __future__ import annotations

import re

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from core.config import DEFAULT_CONFIG, load_config
from networks.registry import SYSTEMS, get_system
from tuning.space import SPACE_DIR, SpaceError, default_space, load_space

CLASSICAL = get_system("classical")


def _space(tmp_path, text: str, system=CLASSICAL):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return load_space(path, system, DEFAULT_CONFIG)


def test_every_shipped_space_loads_for_its_system():
    shipped = sorted(p.stem for p in SPACE_DIR.glob("*.yaml"))
    assert shipped == ["autoencoder", "auxiliary", "classical"]
    for name in shipped:
        assert name in SYSTEMS
        space = load_space(default_space(name), get_system(name), DEFAULT_CONFIG)
        assert space.trials >= 1 and space.dimensions
        assert set(space.distributions()) == {d.key for d in space.dimensions}


def test_ranges_and_choices_become_distributions_and_configuration_values(tmp_path):
    space = _space(
        tmp_path,
        "trials: 7\n"
        "space:\n"
        "  classical.n_neighbors: {int: [1, 32], log: true}\n"
        "  classical.lof_neighbors: {int: [5, 50], step: 5}\n"
        "  feature.fmin: {float: [0, 1e2]}\n"  # YAML reads 1e2 as text; a float range takes it
        "  classical.statistics: {choices: [[mean, std], [mean, max, min]]}\n"
        "  score.method: {choices: [knn, gaussian]}\n",
    )
    assert space.trials == 7
    d = space.distributions()
    assert d["classical.n_neighbors"] == IntDistribution(1, 32, log=True)
    assert d["classical.lof_neighbors"] == IntDistribution(5, 50, step=5)
    assert d["feature.fmin"] == FloatDistribution(0.0, 100.0)
    assert d["classical.statistics"] == CategoricalDistribution(["[mean, std]", "[mean, max, min]"])
    assert d["score.method"] == CategoricalDistribution(["knn", "gaussian"])
    params = {
        "classical.n_neighbors": 4,
        "classical.lof_neighbors": 15,
        "feature.fmin": 20.0,
        "classical.statistics": "[mean, max, min]",
        "score.method": "gaussian",
    }
    overrides = space.overrides(params)
    assert overrides["classical.statistics"] == ["mean", "max", "min"]
    cfg = load_config(overrides=overrides)
    assert (cfg.classical.n_neighbors, cfg.classical.lof_neighbors, cfg.feature.fmin) == (4, 15, 20.0)
    assert (cfg.classical.statistics, cfg.score.method) == (["mean", "max", "min"], "gaussian")
    assert space.params_of(cfg) == params  # and back: how a study starts from the defaults
    outside = load_config(overrides={**overrides, "classical.lof_neighbors": 12})  # off the step grid
    assert space.params_of(outside) is None


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "space:\n  classical.n_neighbours: {int: [1, 4]}\n",
            "unknown search-space key 'classical.n_neighbours' for the classical system; valid: "
            "classical.features, classical.combine, classical.domains, classical.statistics",
        ),
        (
            "space:\n  autoencoder.epochs: {int: [1, 4]}\n",
            "unknown search-space key 'autoencoder.epochs' for the classical system; valid: classical.features",
        ),
        (
            "space:\n  classical.n_neighbors: {int: [1, 4], lg: true}\n",
            "unknown field 'lg'; valid: int, float, choices",
        ),
        ("space:\n  classical.n_neighbors: {int: [1, 4], choices: [1]}\n", "give exactly one of int, float, choices"),
        ("space:\n  classical.n_neighbors: [1, 4]\n", "give {int: [low, high]}, {float: [low, high]} or {choices"),
        ("space:\n  classical.n_neighbors: {int: [4, 1]}\n", "the low end 4 must be below the high end 1"),
        ("space:\n  classical.n_neighbors: {int: [1.5, 4]}\n", "int must be a list [low, high] of int numbers"),
        ("space:\n  feature.fmin: {float: [0, 100], log: true}\n", "log needs a positive low end, got 0"),
        (
            "space:\n  classical.n_neighbors: {int: [0, 4]}\n",
            "classical.n_neighbors: config key 'classical.n_neighbors' must be >= 1, got 0",
        ),
        (
            "space:\n  classical.n_neighbors: {float: [1, 4]}\n",
            "config key 'classical.n_neighbors' must be an integer, got 1.0",
        ),
        (
            "space:\n  classical.statistics: {choices: [[mean], [mode]]}\n",
            "'classical.statistics' must be one of mean, std, max, min, median; got 'mode'",
        ),
        (
            "space:\n  score.method: {choices: [knn, mahala]}\n",
            "score.method: system ClassicalSystem has no scorer 'mahala'; valid: knn, lof, iforest, gaussian",
        ),
        ("space:\n  score.method: {choices: [knn, knn]}\n", "choices must differ from each other"),
        ("trials: 0\nspace:\n  classical.n_neighbors: {int: [1, 4]}\n", "trials must be a positive integer, got 0"),
        ("folds: 3\nspace:\n  classical.n_neighbors: {int: [1, 4]}\n", "unknown entry 'folds'; valid: trials, space"),
        ("space: {}\n", "must hold a mapping 'space' of dotted keys and their ranges"),
        ("space: [\n", "is not valid YAML"),
    ],
)
def test_bad_spaces_are_one_line_errors_naming_file_and_key(tmp_path, text, message):
    with pytest.raises(SpaceError, match=re.escape(message)) as caught:
        _space(tmp_path, text)
    assert str(caught.value).startswith(str(tmp_path / "space.yaml"))
    assert "\n" not in str(caught.value) or "YAML" in message  # the parser's own report spans lines


def test_a_missing_space_file_says_where_spaces_live(tmp_path):
    with pytest.raises(SpaceError, match=r"does not exist \(one per system: tuning/<system>.yaml\)"):
        load_space(tmp_path / "nope.yaml", CLASSICAL, DEFAULT_CONFIG)
