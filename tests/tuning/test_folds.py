"""Machine-type folds: no machine type is ever on both sides of a fold, each is held out once."""

from __future__ import annotations

import pytest

from tuning.folds import FoldError, machine_type_folds


@pytest.mark.parametrize("n_types", [2, 3, 4, 7, 10])
def test_folds_hold_out_every_machine_type_exactly_once_and_never_train_on_it(n_types):
    machines = [f"Machine{i}" for i in range(n_types)]
    for k in range(2, n_types + 1):
        for seed in (0, 1, 13711):
            folds = machine_type_folds(list(reversed(machines)), k, seed)
            assert len(folds) == k and [f.name for f in folds] == [f"fold{i + 1}" for i in range(k)]
            held_out = [m for f in folds for m in f.held_out]
            assert sorted(held_out) == machines  # each type held out once, none twice
            for fold in folds:
                assert set(fold.train).isdisjoint(fold.held_out)
                assert sorted(fold.train + fold.held_out) == machines
                assert fold.held_out and fold.train
            sizes = [len(f.held_out) for f in folds]
            assert max(sizes) - min(sizes) <= 1
            assert machine_type_folds(machines, k, seed) == folds  # the seed alone decides


def test_the_seed_shuffles_which_types_share_a_fold():
    machines = [f"Machine{i}" for i in range(7)]
    assignments = {tuple(f.held_out for f in machine_type_folds(machines, 3, seed)) for seed in range(6)}
    assert len(assignments) > 1


def test_impossible_fold_counts_are_refused_naming_the_machine_types():
    with pytest.raises(FoldError, match=r"3 folds over machine types need 2 <= folds <= 2 \(the machine types: a, b\)"):
        machine_type_folds(["b", "a"], 3, 0)
    with pytest.raises(FoldError, match="1 folds"):
        machine_type_folds(["a", "b", "c"], 1, 0)
