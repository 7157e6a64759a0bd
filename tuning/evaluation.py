"""The objective of a search: one configuration's official score on some machine types.

A configuration is trained and scored through the `System` interface exactly as `01_train.sh` and
`02_test.sh` do (seeded the same way, one model per machine type or one for all, per the system's
scope; the feature cache shared), and its test clips are judged with the official metrics: per
section, decisions from the gamma threshold of the training scores, AUC (source), AUC (target) and
pAUC, and the year's ranking score over the sections.

Reads the clips of `dataset`; writes, per trained model, `<store>/<training fingerprint>/scores.csv`
(every training and test clip's score under every scorer of the system, `repr` floats). A model
is trained in `<store>/<fingerprint>/work/` (its checkpoints, so a killed training resumes there),
which is removed once the scores are written. The same configuration on the same machine types
(whichever trial or fold asks, and whichever scorer) is therefore trained once.
"""

from __future__ import annotations

import csv
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import write_csv
from core.config import Config
from core.layout import model_groups, training_fingerprint
from core.runtime import seed_everything
from datasets.manifest import Clip, Dataset, DatasetError
from networks.registry import get_system, resolve_scorer
from networks.system import Runtime
from reporting.decision import decide, gamma_threshold
from reporting.metrics import SectionMetrics, official_score, ranking_for_year, section_metrics

log = logging.getLogger(__name__)
SCORES_FILE = "scores.csv"
KEY_COLUMNS = ["split", "machine", "section", "domain", "label", "name"]


@dataclass(frozen=True)
class ScoreTable:
    """Every clip of one trained model: its key columns and its score under each scorer."""

    rows: list[list[str]]  # KEY_COLUMNS per clip
    scores: dict[str, np.ndarray]  # scorer -> [clips]


def official(cfg: Config, results: list[SectionMetrics]) -> float:
    """The official score of `cfg`'s data year over `results`."""
    return official_score(results, ranking_for_year(cfg.data.year))


def evaluate(cfg: Config, machines: list[str], dataset: Dataset, runtime: Runtime, store: Path) -> list[SectionMetrics]:
    """The metrics of every test section of `machines` with `cfg` (its system, settings and scorer).

    Raises:
        DatasetError: a test clip is unlabelled (a search needs the labels of development data).
        AudioError: a clip cannot be used.
    """
    system_cls = get_system(cfg.run.system)
    scorer = resolve_scorer(system_cls, cfg.score.method)
    results = []
    for group_machines in model_groups(system_cls.scope, sorted(machines)).values():
        table = score_table(cfg, group_machines, dataset, runtime, store)
        results += section_results(table, scorer, cfg.decision.threshold_quantile, cfg.metrics.max_fpr)
    return results


def score_table(cfg: Config, machines: list[str], dataset: Dataset, runtime: Runtime, store: Path) -> ScoreTable:
    """The scores of one model of `cfg` trained on `machines`: from the store, else trained now."""
    folder = store / training_fingerprint(cfg, machines)
    stored = _read_table(folder / SCORES_FILE)
    if stored is not None:
        return stored
    system_cls = get_system(cfg.run.system)
    train = [c for m in machines for c in dataset.clips(m, "train")]
    test = [c for m in machines for c in dataset.clips(m, "test")]
    unlabelled = [c for c in test if not c.is_labelled]
    if unlabelled:
        raise DatasetError(
            f"{unlabelled[0].path} is unlabelled: a search scores configurations on labelled test clips "
            "(development data, -d)"
        )
    log.info("training %s on %s -> %s", cfg.run.system, ", ".join(machines), folder)
    seed_everything(cfg.run.seed, runtime.device)
    system = system_cls.from_config(cfg).fit(train, runtime, folder / "work")
    scores = {s: np.concatenate([system.train_scores_[s], system.score(test, s, runtime)]) for s in system_cls.scorers}
    rows = [_key(c, "train") for c in system.train_clips_] + [_key(c, "test") for c in test]
    write_csv(
        folder / SCORES_FILE,
        [KEY_COLUMNS + list(scores)]
        + [row + [repr(float(scores[s][i])) for s in scores] for i, row in enumerate(rows)],
    )
    shutil.rmtree(folder / "work", ignore_errors=True)
    return ScoreTable(rows, scores)


def section_results(table: ScoreTable, scorer: str, quantile: float, max_fpr: float) -> list[SectionMetrics]:
    """Official metrics of each test section of `table` under `scorer`, decisions thresholded as
    `02_test.sh` does (gamma fit to the section's training scores)."""
    split, machine, section = (np.array([r[i] for r in table.rows]) for i in range(3))
    domain, label = (np.array([r[i] for r in table.rows]) for i in (3, 4))
    scores = table.scores[scorer]
    results = []
    for m, s in sorted({(m, s) for m, s, sp in zip(machine, section, split) if sp == "test"}):
        here = (machine == m) & (section == s)
        test, train = here & (split == "test"), here & (split == "train")
        if not train.any():
            raise DatasetError(f"{m} section {s} has test clips but no training clips; cannot set a threshold")
        threshold = gamma_threshold(scores[train], quantile)
        results.append(
            section_metrics(
                m,
                s,
                is_anomaly=label[test] == "anomaly",
                is_target=domain[test] == "target",
                scores=scores[test],
                decisions=decide(scores[test], threshold),
                max_fpr=max_fpr,
            )
        )
    return results


def _key(clip: Clip, split: str) -> list[str]:
    return [split, clip.machine, clip.section, clip.domain or "", clip.label or "", clip.name]


def _read_table(path: Path) -> ScoreTable | None:
    """The stored table, or None when there is none or it cannot be read (it is then recomputed)."""
    if not path.is_file():
        return None
    try:
        with path.open(newline="") as f:
            header, *lines = list(csv.reader(f))
        scorers = header[len(KEY_COLUMNS) :]
        if header[: len(KEY_COLUMNS)] != KEY_COLUMNS or not scorers or any(len(r) != len(header) for r in lines):
            raise ValueError("not a score table")
        values = np.array([[float(v) for v in r[len(KEY_COLUMNS) :]] for r in lines]).reshape(len(lines), -1)
    except (ValueError, csv.Error, UnicodeDecodeError) as e:
        log.warning("%s is damaged (%s): training again", path, e)
        return None
    return ScoreTable([r[: len(KEY_COLUMNS)] for r in lines], {s: values[:, i] for i, s in enumerate(scorers)})
