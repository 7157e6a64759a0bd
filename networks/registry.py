"""System name -> system class. Adding a system means adding a module and one line here.

Entries are import paths, so choosing one system never imports another's dependencies.
"""

from __future__ import annotations

import importlib

from networks.system import System

SYSTEMS: dict[str, str] = {
    "autoencoder": "networks.autoencoder.system:AutoencoderSystem",
    "classical": "networks.classical.system:ClassicalSystem",
    "beats": "networks.beats.system:BeatsSystem",
    "auxiliary": "networks.auxiliary.system:AuxiliarySystem",
    "ensemble": "networks.ensemble.system:EnsembleSystem",  # fuses the scores of the others
}


def get_system(name: str) -> type[System]:
    """The class registered under `name`; an unknown name raises a KeyError listing valid ones."""
    if name not in SYSTEMS:
        raise KeyError(f"unknown system {name!r}; valid: {', '.join(SYSTEMS)}")
    module, cls = SYSTEMS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_scorer(system: type[System], requested: str, settings: object | None = None) -> str:
    """`requested` if the system has it, its first scorer for `default`; else a KeyError naming
    the valid scorers. With the system's configuration section `settings`, a scorer that needs
    another setting (`System.scorer_needs`) is refused too, saying which."""
    if requested == "default":
        return system.scorers[0]
    if requested not in system.scorers:
        raise KeyError(f"system {system.__name__} has no scorer {requested!r}; valid: {', '.join(system.scorers)}")
    if settings is not None and requested not in available_scorers(system, settings):
        key, value = system.scorer_needs[requested]
        raise KeyError(
            f"scorer {requested!r} needs --{system.section}.{key} {value} (here {getattr(settings, key)}); "
            f"valid here: {', '.join(available_scorers(system, settings))}"
        )
    return requested


def available_scorers(system: type[System], settings: object) -> list[str]:
    """The scorers of `system` that its configuration section `settings` provides (`System.scorer_needs`)."""
    needs = system.scorer_needs
    return [s for s in system.scorers if s not in needs or getattr(settings, needs[s][0]) == needs[s][1]]
