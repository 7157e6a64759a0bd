"""Machine-type folds: cross-validation that holds out whole machine types, as the evaluation set does.

Every DCASE evaluation set since 2023 consists of machine types never seen in development, so a
configuration is judged by how it does on machine types that played no part in choosing it. The
machine types are shuffled with a seed and dealt round-robin into K held-out groups; fold i trains
(selects) on all the other types. Every type is held out exactly once. Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class FoldError(ValueError):
    """Folds that cannot be made from these machine types."""


@dataclass(frozen=True)
class Fold:
    name: str  # "fold1", ...
    train: tuple[str, ...]  # machine types a configuration is selected on
    held_out: tuple[str, ...]  # machine types it is then judged on


def machine_type_folds(machines: list[str], k: int, seed: int) -> list[Fold]:
    """K folds over `machines` (each held out once, never in both parts of a fold).

    Raises:
        FoldError: fewer than 2 folds, or more folds than machine types.
    """
    machines = sorted(set(machines))
    if not 2 <= k <= len(machines):
        raise FoldError(
            f"{k} folds over machine types need 2 <= folds <= {len(machines)} (the machine types: "
            f"{', '.join(machines)}); set --folds accordingly"
        )
    order = [machines[i] for i in np.random.default_rng(seed).permutation(len(machines))]
    folds = []
    for i in range(k):
        held_out = tuple(sorted(order[i::k]))
        folds.append(Fold(f"fold{i + 1}", tuple(m for m in machines if m not in held_out), held_out))
    return folds
