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


def resolve_scorer(system: type[System], requested: str) -> str:
    """`requested` if the system has it, its first scorer for `default`; else a KeyError naming
    the valid scorers."""
    if requested == "default":
        return system.scorers[0]
    if requested not in system.scorers:
        raise KeyError(f"system {system.__name__} has no scorer {requested!r}; valid: {', '.join(system.scorers)}")
    return requested
