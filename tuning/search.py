"""A hyper-parameter search that generalises to unseen machine types: Optuna studies over
machine-type folds, stored in SQLite so that a killed search resumes.

The protocol (nested cross-validation over machine types):
1. The machine types are dealt into K folds (`tuning.folds`). For each fold, a study of its own
   searches the space, each trial scored by the official score on the fold's *training* types
   only: neither the trial values nor the sampler ever see the held-out types.
2. The fold's selected configuration (its study's best trial) is then trained and scored on the
   fold's held-out types, and so are the hand-set defaults (the configuration without the trial's
   parameters). Pooled over the folds, where every machine type is held out exactly once, these
   are honest estimates of how the search and the defaults do on machine types never seen while
   tuning: the figure to compare.
3. A last study over all machine types selects the configuration to use (`best.yaml`); its own
   score is the one it was selected by, so it is optimistic, and step 2's figure is its estimate.

Every study starts with the defaults as its first trial (when the space holds them), so a
study's choice is never worse than the defaults on the types it selects on. Each study has the
same sampler seed, so their random start-up trials coincide, and `tuning.evaluation` trains each
configuration once per machine type whichever study asks. A trial's state lives in the study
database: trials killed while running are marked failed when the search restarts and are run
again (their finished machine types come from the store), and a study runs until it has its
budget of finished trials. Writes only the database and, through `tuning.evaluation`, the store.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.samplers import TPESampler
from optuna.trial import FrozenTrial, TrialState

from core.config import Config, load_config
from datasets.manifest import Dataset
from networks.registry import get_system, resolve_scorer
from networks.system import Runtime
from reporting.metrics import SectionMetrics
from tuning.evaluation import evaluate, official
from tuning.folds import Fold
from tuning.space import SearchSpace

log = logging.getLogger(__name__)
ALL = "all"  # name of the study over every machine type
ERROR_ATTR = "error"  # user attribute of a trial that failed by itself (not killed)
# Settings that do not change a trial's score: a study may be resumed with other values of these.
INCIDENTAL = {"run": ("model_dir", "result_dir", "force", "device"), "data": ("workers", "cache_dir", "machines")}


class StudyError(RuntimeError):
    """A study database that cannot be used for this search; the message says what to do."""


@dataclass(frozen=True)
class Search:
    """What a search tries: the space, the configuration it starts from, and where it runs."""

    space: SearchSpace
    config_file: Path  # --config of the command line (merged over baseline.yaml)
    overrides: dict[str, object]  # the command line's settings
    dataset: Dataset
    runtime: Runtime
    store: Path  # trained configurations' scores (tuning.evaluation)

    def config(self, params: dict[str, object] | None = None) -> Config:
        """The configuration of a trial's parameters; the defaults without any."""
        return load_config(self.config_file, {**self.overrides, **self.space.overrides(params or {})})

    def start(self) -> dict[str, object] | None:
        """The parameters of the defaults (their scorer resolved), or None outside the space."""
        cfg = self.config()
        cfg.score.method = resolve_scorer(get_system(cfg.run.system), cfg.score.method)
        return self.space.params_of(cfg)

    def results(self, params: dict[str, object] | None, machines: tuple[str, ...]) -> list[SectionMetrics]:
        return evaluate(self.config(params), list(machines), self.dataset, self.runtime, self.store)

    def score(self, params: dict[str, object] | None, machines: tuple[str, ...]) -> float:
        return official(self.config(params), self.results(params, machines))

    def identity(self, machines: tuple[str, ...]) -> str:
        """What a study over `machines` must keep when it is resumed: the space, the machine
        types and every setting that changes a score."""
        values = self.config().to_dict()
        values.pop("download")
        for section, keys in INCIDENTAL.items():
            for key in keys:
                values[section].pop(key)
        return json.dumps(
            {"space": self.space.describe(), "machines": list(machines), "config": values}, sort_keys=True
        )


@dataclass(frozen=True)
class FoldResult:
    """A fold's selected trial and the held-out metrics of it and of the defaults."""

    fold: Fold
    selected: FrozenTrial
    tuned: list[SectionMetrics]
    defaults: list[SectionMetrics]


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold `lock_file` for the block; another process holding it is an error (the lock dies with
    its process, so a killed search never blocks the next)."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StudyError(
                f"another search is running on {lock_file.with_suffix('.db')} (lock {lock_file})"
            ) from None
        yield
    finally:
        os.close(fd)


def open_study(database: Path, name: str, identity: str, seed: int) -> optuna.Study:
    """The study `name` in `database`, created if new; a trial left running by a killed search is
    marked failed and queued again.

    Raises:
        StudyError: the stored study was made with another space, machine types or configuration.
    """
    study = optuna.create_study(
        study_name=name, storage=f"sqlite:///{database.resolve()}", direction="maximize", load_if_exists=True
    )
    stored = study.user_attrs.get("identity")
    if stored is None:
        study.set_user_attr("identity", identity)
    elif stored != identity:
        raise StudyError(
            f"study {name!r} in {database} was made with another search space, machine types or configuration; "
            f"choose another --study, or delete {database} to start again"
        )
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.warning("%s: trial %d was interrupted; running its parameters again", name, trial.number)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    # A sampler seeded anew on every restart would propose the trials it proposed before.
    study.sampler = TPESampler(seed=seed + len(study.trials))
    return study


def finished(study: optuna.Study) -> int:
    """Trials that count against the budget: completed ones and those that failed by themselves."""
    return sum(
        t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and ERROR_ATTR in t.user_attrs)
        for t in study.get_trials(deepcopy=False)
    )


def run_study(
    study: optuna.Study,
    search: Search,
    machines: tuple[str, ...],
    budget: int,
    on_trial: Callable[[FrozenTrial], None],
) -> None:
    """Run trials of `study`, each scored on `machines`, until it has `budget` finished trials."""
    start = search.start()
    if not study.trials:
        if start is None:
            log.info("%s: the defaults lie outside the search space; not starting from them", study.study_name)
        else:
            study.enqueue_trial(start, user_attrs={"defaults": True})
    distributions = search.space.distributions()
    while finished(study) < budget:
        trial = study.ask(distributions)
        try:
            value = search.score(trial.params, machines)
            if not math.isfinite(value):
                raise ValueError("the official score is undefined (no section has both normal and anomalous clips)")
        except Exception as e:  # a configuration that cannot run fails its trial, not the search
            log.exception("%s: trial %d failed", study.study_name, trial.number)
            trial.set_user_attr(ERROR_ATTR, f"{type(e).__name__}: {e}")
            frozen = study.tell(trial, state=TrialState.FAIL)
        else:
            frozen = study.tell(trial, value)
            log.info(
                "%s: trial %d: official score %.4f on %s with %s",
                study.study_name,
                trial.number,
                value,
                ", ".join(machines),
                trial.params,
            )
        on_trial(frozen)


def best_trial(study: optuna.Study) -> FrozenTrial:
    """The study's best completed trial (the first of equals).

    Raises:
        StudyError: no trial completed.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise StudyError(f"study {study.study_name!r}: every trial failed; see the log for why")
    return max(complete, key=lambda t: (t.value, -t.number))


def fold_result(search: Search, fold: Fold, study: optuna.Study) -> FoldResult:
    """Step 2 of the protocol for one fold: its selected trial and the defaults on its held-out types."""
    selected = best_trial(study)
    return FoldResult(
        fold,
        selected,
        tuned=search.results(selected.params, fold.held_out),
        defaults=search.results(None, fold.held_out),
    )
