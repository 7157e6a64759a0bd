"""Member names, member configurations and the fusion rules, with values checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from core.config import ConfigError, EnsembleConfig, load_config
from networks.ensemble.fusion import Member, fuse, member_config, member_systems, parse_members, weights_of


def test_members_name_a_system_and_a_scorer_or_its_default_scorer():
    members = parse_members(EnsembleConfig(["classical:knn", "autoencoder", "classical:gaussian"], []))
    assert members == [Member("classical", "knn"), Member("autoencoder", "mse"), Member("classical", "gaussian")]
    assert [m.name for m in members] == ["classical:knn", "autoencoder:mse", "classical:gaussian"]
    assert member_systems(members) == ["classical", "autoencoder"]  # a system with two scorers trains once


@pytest.mark.parametrize(
    ("members", "weights", "message"),
    [
        (
            ["forest:knn"],
            [],
            "ensemble.members: unknown system 'forest' in 'forest:knn'; valid: autoencoder, classical, beats, auxiliary",
        ),
        (
            ["classical:mse"],
            [],
            "ensemble.members: system ClassicalSystem has no scorer 'mse'; valid: knn, lof, iforest, gaussian "
            "(in 'classical:mse')",
        ),
        (["ensemble:mean"], [], "unknown system 'ensemble' in 'ensemble:mean'"),
        (["classical:knn", "classical:knn"], [], "ensemble.members names classical:knn twice"),
        ([], [], "ensemble.members is empty"),
        (["classical:knn", "classical:gaussian"], [1.0], "ensemble.weights has 1 values for 2 members"),
    ],
)
def test_bad_members_and_weights_are_refused_in_one_line(members, weights, message):
    with pytest.raises(ConfigError) as error:
        parse_members(EnsembleConfig(members, weights))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_schema_refuses_a_malformed_member_name():
    with pytest.raises(ConfigError, match="'ensemble.members' must be system or system:scorer, got 'a:b:c'"):
        load_config(overrides={"ensemble.members": "a:b:c"})
    with pytest.raises(ConfigError, match="'ensemble.weights' must be > 0"):
        load_config(overrides={"ensemble.weights": "1,0"})


def test_a_member_reads_the_configuration_as_given_with_its_own_system():
    cfg = load_config(overrides={"run.system": "ensemble", "autoencoder.epochs": 3, "feature.n_mels": 64})
    member = member_config(cfg, "autoencoder")
    assert member.run.system == "autoencoder" and cfg.run.system == "ensemble"
    assert member.autoencoder.epochs == 3 and member.feature.n_mels == 64 and member.data == cfg.data


def test_mean_and_max_fusion_with_and_without_weights():
    z = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -0.5]])  # [members, clips]
    equal = weights_of(EnsembleConfig(["a", "b"], []), 2)
    assert fuse(z, "mean", equal).tolist() == [2.0, -1.0, 0.0]
    assert fuse(z, "max", equal).tolist() == [3.0, 0.0, 0.5]
    weights = weights_of(EnsembleConfig(["a", "b"], [3.0, 1.0]), 2)
    assert fuse(z, "mean", weights).tolist() == [1.5, -1.5, 0.25]  # (3 * z0 + z1) / 4
    assert fuse(z, "max", weights).tolist() == [3.0, 0.0, 1.5]  # max(3 * z0, z1)
