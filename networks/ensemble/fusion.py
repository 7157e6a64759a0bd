"""What an ensemble is made of and how its members' scores are combined: pure functions.

Reads the `ensemble` section of the configuration (`members` as `system:scorer`, `weights`) and the
registry of systems; `fuse` turns the members' standardised scores `[members, clips]` into one
score per clip `[clips]`. Nothing is read from or written to disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from core.config import Config, ConfigError, EnsembleConfig
from networks.registry import SYSTEMS, get_system, resolve_scorer

ENSEMBLE = "ensemble"  # its own name in the registry: an ensemble is never a member of one


@dataclass(frozen=True)
class Member:
    """One member: a registered system and one of its scorers."""

    system: str
    scorer: str

    @property
    def name(self) -> str:
        return f"{self.system}:{self.scorer}"


def parse_members(settings: EnsembleConfig) -> list[Member]:
    """The members of `settings.members` (`system` alone means its default scorer), checked.

    Raises:
        ConfigError: an unknown system or scorer (listing the valid ones), a member named twice,
            no members, or not one weight per member.
    """
    if not settings.members:
        raise ConfigError("ensemble.members is empty: name at least one system:scorer (e.g. classical:gaussian)")
    members = []
    for text in settings.members:
        system, _, scorer = text.partition(":")
        if system not in SYSTEMS or system == ENSEMBLE:
            valid = ", ".join(s for s in SYSTEMS if s != ENSEMBLE)
            raise ConfigError(f"ensemble.members: unknown system {system!r} in {text!r}; valid: {valid}")
        try:
            member = Member(system, resolve_scorer(get_system(system), scorer or "default"))
        except KeyError as e:
            raise ConfigError(f"ensemble.members: {e.args[0]} (in {text!r})") from None
        if member in members:
            raise ConfigError(f"ensemble.members names {member.name} twice")
        members.append(member)
    if settings.weights and len(settings.weights) != len(members):
        raise ConfigError(
            f"ensemble.weights has {len(settings.weights)} values for {len(members)} members "
            f"({', '.join(m.name for m in members)}): give one per member, or [] for equal weights"
        )
    return members


def member_systems(members: list[Member]) -> list[str]:
    """The distinct systems of `members`, in order: a system with two scorers is trained once."""
    return list(dict.fromkeys(m.system for m in members))


def member_config(cfg: Config, system: str) -> Config:
    """`cfg` as `01_train.sh --system <system>` reads it: the member trains and scores with its own
    section and the shared ones (data, feature, seed) exactly as given."""
    return dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, system=system))


def weights_of(settings: EnsembleConfig, n_members: int) -> np.ndarray:
    """[members] the configured weights, or ones."""
    return np.asarray(settings.weights, dtype=float) if settings.weights else np.ones(n_members)


def _mean(weighted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return weighted.sum(axis=0) / weights.sum()


def _max(weighted: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return weighted.max(axis=0)


# Fusion -> [clips] from the weighted standardised scores [members, clips] and the weights [members].
# These are the ensemble's scorers: both are fitted at training time, so `--score` chooses at test time.
FUSIONS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {"mean": _mean, "max": _max}


def fuse(standardised: np.ndarray, fusion: str, weights: np.ndarray) -> np.ndarray:
    """[clips] fused scores: the weighted mean (sum of weight x score over the sum of the weights),
    or the largest weighted score.

    Args:
        standardised: [members, clips] each member's scores, standardised per section.
        fusion: a key of `FUSIONS`.
        weights: [members] positive weights.
    """
    return FUSIONS[fusion](standardised * weights[:, None], weights)
