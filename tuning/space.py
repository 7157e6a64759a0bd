"""A search space of `tools.tune`: a YAML file of dotted configuration keys and their ranges.

Reads `tuning/<system>.yaml` (or any file of this shape):

    trials: 20                                        # default budget: trials per study
    space:
      classical.n_neighbors: {int: [1, 32], log: true}
      classical.covariance_shrinkage: {choices: [true, false]}
      classical.statistics: {choices: [[mean, std, max], [mean, std]]}
      score.method: {choices: [knn, gaussian]}

`int: [low, high]` and `float: [low, high]` are inclusive ranges (`log: true` samples on a log
scale, `step: N` on a grid); `choices` lists values, which may themselves be lists. The keys a
system can be tuned on are those its trained model and its score depend on: its own section of
`baseline.yaml`, `feature`, and `score.method`. Each range end and each choice is checked by
loading it into the configuration (`core.config`) and each scorer against the system, so a value
that a run would refuse is refused here, with a one-line error naming the file and the key.
Writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from core.config import Config, ConfigError, load_config
from networks.registry import resolve_scorer
from networks.system import System

SPACE_DIR = Path(__file__).resolve().parent  # tuning/<system>.yaml: each system's default space
SCORE_KEY = "score.method"
TOP_LEVEL = ("trials", "space")
KINDS = ("int", "float", "choices")
FIELDS = KINDS + ("log", "step")


class SpaceError(ValueError):
    """A search-space file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Dimension:
    """One tuned key: an int or float range, or a list of choices."""

    key: str  # dotted configuration key, e.g. "classical.n_neighbors"
    kind: str  # int | float | choices
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()  # configuration values (lists allowed)

    def distribution(self) -> BaseDistribution:
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return FloatDistribution(self.low, self.high, log=self.log, step=self.step)
        return CategoricalDistribution([_label(c) for c in self.choices])

    def config_value(self, sampled: object) -> object:
        """The configuration value of a value Optuna sampled (a choice's label -> the choice)."""
        if self.kind == "choices":
            return {_label(c): c for c in self.choices}[sampled]
        return sampled

    def sampled_value(self, config_value: object) -> object | None:
        """What Optuna would have sampled for `config_value`; None where the space does not hold it."""
        if self.kind == "choices":
            labels = {_label(c) for c in self.choices}
            label = _label(config_value)
            return label if label in labels else None
        number = isinstance(config_value, (int, float)) and not isinstance(config_value, bool)
        if not number or not self.low <= config_value <= self.high:
            return None
        if self.kind == "int" and config_value != int(config_value):
            return None
        if self.step and not float((config_value - self.low) / self.step).is_integer():
            return None
        return config_value


@dataclass(frozen=True)
class SearchSpace:
    path: Path
    trials: int  # default budget per study
    dimensions: tuple[Dimension, ...]

    def distributions(self) -> dict[str, BaseDistribution]:
        return {d.key: d.distribution() for d in self.dimensions}

    def overrides(self, params: dict[str, object]) -> dict[str, object]:
        """Configuration overrides (`{"section.key": value}`) of a trial's sampled parameters."""
        return {d.key: d.config_value(params[d.key]) for d in self.dimensions if d.key in params}

    def params_of(self, cfg: Config) -> dict[str, object] | None:
        """The parameters that give `cfg`'s values (to start a study at the defaults), or None
        where one of them lies outside the space."""
        values = cfg.to_dict()
        params = {}
        for d in self.dimensions:
            section, key = d.key.split(".")
            sampled = d.sampled_value(values[section][key])
            if sampled is None:
                return None
            params[d.key] = sampled
        return params

    def describe(self) -> str:
        """The space as text, to tell whether a stored study was made with this same space."""
        return json.dumps([d.__dict__ for d in self.dimensions], sort_keys=True, default=list)


def default_space(system: str) -> Path:
    return SPACE_DIR / f"{system}.yaml"


def tunable_keys(system: type[System], cfg: Config) -> list[str]:
    """The keys a search space of `system` may hold: its section, `feature`, and the scorer."""
    values = cfg.to_dict()
    return [f"{s}.{k}" for s in (system.section, "feature") for k in values[s]] + [SCORE_KEY]


def load_space(path: Path, system: type[System], config_file: Path) -> SearchSpace:
    """Read and check the search space in `path` for `system`, whose runs start from `config_file`.

    Raises:
        SpaceError: the file is missing or malformed, names an unknown key or field, or holds a
            range end or choice that the configuration (or the system's scorers) would refuse.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise SpaceError(f"search space {path} does not exist (one per system: tuning/<system>.yaml)") from None
    except yaml.YAMLError as e:
        raise SpaceError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("space"), dict) or not raw["space"]:
        raise SpaceError(f"{path} must hold a mapping 'space' of dotted keys and their ranges")
    unknown = [k for k in raw if k not in TOP_LEVEL]
    if unknown:
        raise SpaceError(f"{path}: unknown entry {unknown[0]!r}; valid: {', '.join(TOP_LEVEL)}")
    trials = raw.get("trials", 20)
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise SpaceError(f"{path}: trials must be a positive integer, got {trials!r}")
    valid = tunable_keys(system, load_config(config_file))
    dimensions = []
    for key, spec in raw["space"].items():
        if key not in valid:
            raise SpaceError(
                f"{path}: unknown search-space key {key!r} for the {system.section} system; valid: {', '.join(valid)}"
            )
        dimension = _dimension(path, key, spec)
        for value in (dimension.low, dimension.high) if dimension.kind != "choices" else dimension.choices:
            _check_value(path, key, value, system, config_file)
        dimensions.append(dimension)
    return SearchSpace(path, trials, tuple(dimensions))


def _dimension(path: Path, key: str, spec: object) -> Dimension:
    where = f"{path}: {key}"
    if not isinstance(spec, dict):
        raise SpaceError(
            f"{where}: give {{int: [low, high]}}, {{float: [low, high]}} or {{choices: [...]}}, got {spec!r}"
        )
    unknown = [f for f in spec if f not in FIELDS]
    if unknown:
        raise SpaceError(f"{where}: unknown field {unknown[0]!r}; valid: {', '.join(FIELDS)}")
    kinds = [k for k in KINDS if k in spec]
    if len(kinds) != 1:
        raise SpaceError(f"{where}: give exactly one of {', '.join(KINDS)}, got {', '.join(kinds) or 'none'}")
    (kind,) = kinds
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise SpaceError(f"{where}: log must be true or false, got {log!r}")
    if kind == "choices":
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or "log" in spec or "step" in spec:
            raise SpaceError(f"{where}: choices must be a non-empty list, without log or step, got {choices!r}")
        if len({_label(c) for c in choices}) != len(choices):
            raise SpaceError(f"{where}: choices must differ from each other, got {choices!r}")
        return Dimension(key, kind, choices=tuple(choices))
    bounds = spec[kind]
    number = int if kind == "int" else (int, float)
    if kind == "float" and isinstance(bounds, list):
        # YAML 1.1 reads `1e-3` (no dot) as text; people write ranges that way.
        bounds = [_float_or_text(b) for b in bounds]
    if not (
        isinstance(bounds, list)
        and len(bounds) == 2
        and all(isinstance(b, number) and not isinstance(b, bool) for b in bounds)
    ):
        raise SpaceError(f"{where}: {kind} must be a list [low, high] of {kind} numbers, got {bounds!r}")
    low, high = bounds
    if low >= high:
        raise SpaceError(f"{where}: the low end {low} must be below the high end {high}")
    if log and low <= 0:
        raise SpaceError(f"{where}: log needs a positive low end, got {low}")
    if step is not None and (log or not isinstance(step, number) or isinstance(step, bool) or step <= 0):
        raise SpaceError(f"{where}: step must be a positive {kind} number and cannot go with log, got {step!r}")
    if kind == "float":
        low, high = float(low), float(high)
    return Dimension(key, kind, low, high, log, step)


def _check_value(path: Path, key: str, value: object, system: type[System], config_file: Path) -> None:
    try:
        if key == SCORE_KEY:
            resolve_scorer(system, value)
        else:
            load_config(config_file, {key: value})
    except ConfigError as e:
        raise SpaceError(f"{path}: {key}: {e}") from None
    except KeyError as e:
        raise SpaceError(f"{path}: {key}: {str(e).strip(chr(34))}") from None


def _float_or_text(value: object) -> object:
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _label(choice: object) -> object:
    """A choice as Optuna stores it: scalars as they are, lists as their YAML flow text."""
    if isinstance(choice, (list, dict)):
        return yaml.safe_dump(choice, default_flow_style=True).strip()
    return choice
