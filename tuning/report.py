"""A finished search -> its tables, its plot and the best configuration as a YAML file.

Writes (each atomically, through `core.atomic`): the rows of `trials.csv` (every trial of every
study) and `folds.csv` (per fold the selected trial and the held-out scores of it and of the
defaults, then the pooled estimate), `heldout.csv` (the held-out metrics of the selected
configurations and of the defaults, per machine type), `trials.png` and `best.yaml`: the sections
of the configuration that the selected trial trained and scored with, in the shape of
`baseline.yaml`, for `./01_train.sh --config` and `./02_test.sh --config`.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import yaml  # noqa: E402
from optuna.trial import FrozenTrial  # noqa: E402

from core.atomic import atomic_path, write_text  # noqa: E402
from core.config import Config  # noqa: E402
from reporting.metrics import SectionMetrics, hmean, official_score  # noqa: E402
from tuning.search import FoldResult  # noqa: E402
from tuning.space import SearchSpace  # noqa: E402

POOLED = "pooled"


def trial_rows(studies: dict[str, optuna.Study], space: SearchSpace) -> list[list]:
    """One row per trial: study, number, state, official score on the study's types, seconds, parameters."""
    keys = [d.key for d in space.dimensions]
    rows: list[list] = [["study", "trial", "state", "official score", "seconds"] + keys]
    for name, study in studies.items():
        for t in study.get_trials(deepcopy=False):
            seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            value = "" if t.value is None else t.value
            rows.append([name, t.number, t.state.name, value, seconds] + [t.params.get(k, "") for k in keys])
    return rows


def fold_rows(results: list[FoldResult], ranking: str) -> list[list]:
    """Per fold: held-out types, the selected trial, its score on the training types and the
    held-out official scores of it and of the defaults; last the pooled estimate over all folds."""
    rows: list[list] = [
        [
            "fold",
            "held-out machine types",
            "selected trial",
            "score on training types",
            "held-out: tuned",
            "held-out: defaults",
        ]
    ]
    for r in results:
        rows.append(
            [
                r.fold.name,
                " ".join(r.fold.held_out),
                r.selected.number,
                r.selected.value,
                official_score(r.tuned, ranking),
                official_score(r.defaults, ranking),
            ]
        )
    tuned, defaults = pooled(results)
    types = len({m.machine for m in tuned})
    rows.append([POOLED, f"all {types}", "", "", official_score(tuned, ranking), official_score(defaults, ranking)])
    return rows


def pooled(results: list[FoldResult]) -> tuple[list[SectionMetrics], list[SectionMetrics]]:
    """The held-out sections of every fold (each machine type once): selected configurations, defaults."""
    return [m for r in results for m in r.tuned], [m for r in results for m in r.defaults]


def heldout_rows(results: list[FoldResult], ranking: str) -> list[list]:
    """The pooled held-out metrics of the selected configurations and of the defaults: official
    score, h-means of AUC (source), AUC (target) and pAUC, and each machine type's official score."""
    tuned, defaults = pooled(results)
    machines = sorted({m.machine for m in tuned})
    rows: list[list] = [
        ["configuration", "official score", "AUC (source)", "AUC (target)", "pAUC"] + machines,
    ]
    for name, metrics in (("tuned by machine-type CV", tuned), ("defaults", defaults)):
        rows.append(
            [
                name,
                official_score(metrics, ranking),
                hmean([m.auc["source"] for m in metrics]),
                hmean([m.auc["target"] for m in metrics]),
                hmean([m.pauc for m in metrics]),
            ]
            + [official_score([m for m in metrics if m.machine == machine], ranking) for machine in machines]
        )
    return rows


def plot_search(studies: dict[str, optuna.Study], results: list[FoldResult], ranking: str, out: Path) -> Path:
    """Left: every trial's score on its study's selection types and each study's running best;
    right: per fold and pooled, the held-out score of the selected configuration and of the defaults."""
    fig, (trials_ax, folds_ax) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [3, 2]})
    for i, (name, study) in enumerate(studies.items()):
        done = [t for t in study.get_trials(deepcopy=False) if t.value is not None]
        colour = f"C{i}"
        trials_ax.scatter([t.number for t in done], [t.value for t in done], s=14, color=colour, alpha=0.6)
        best, line = float("-inf"), []
        for t in done:
            best = max(best, t.value)
            line.append(best)
        trials_ax.step([t.number for t in done], line, where="post", color=colour, label=f"{name}: best so far")
    trials_ax.set(xlabel="trial", ylabel="official score on the study's machine types", title="trials per study")
    trials_ax.legend(fontsize="small")
    labels = [r.fold.name for r in results] + [POOLED]
    tuned, defaults = pooled(results)
    tuned_values = [official_score(r.tuned, ranking) for r in results] + [official_score(tuned, ranking)]
    default_values = [official_score(r.defaults, ranking) for r in results] + [official_score(defaults, ranking)]
    x = range(len(labels))
    folds_ax.bar([i - 0.2 for i in x], tuned_values, width=0.4, label="selected by the fold's study")
    folds_ax.bar([i + 0.2 for i in x], default_values, width=0.4, label="defaults")
    low = min(tuned_values + default_values)
    folds_ax.set(
        xticks=list(x),
        xticklabels=labels,
        ylim=(max(0.0, low - 0.1), 1.0),
        ylabel="official score on held-out machine types",
        title="held-out machine types",
    )
    folds_ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return out


def write_best(path: Path, cfg: Config, section: str, scorer: str, trial: FrozenTrial, comment: list[str]) -> Path:
    """`cfg`'s system, `scorer`, and its `feature` and system `section` as a partial configuration
    file, headed by `comment` lines (how it was found)."""
    values = cfg.to_dict()
    sections = {
        "run": {"system": cfg.run.system},
        "score": {"method": scorer},
        "feature": values["feature"],
        section: values[section],
    }
    header = "".join(f"# {line}\n" for line in comment + [f"trial {trial.number}: {trial.params}"])
    write_text(path, header + yaml.safe_dump(sections, sort_keys=False))
    return path
