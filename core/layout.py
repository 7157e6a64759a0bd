"""Where a run's models and results live, derived from the configuration in one place.

models/<dev|eval>_data/<system>/<machine or "all">/   one trained model (+ config.yaml, train_scores.csv)
results/<dev|eval>_data/<system>_<scorer>/            submission CSVs, ground_truth/, result.csv, config.yaml
results/<dev|eval>_data/<system>_<scorer>.incomplete/ a test run in progress, or one that failed
"""

from __future__ import annotations

from pathlib import Path

from core.config import Config, fingerprint

DATASET_GROUP = "all"  # model folder name of systems that train one model for all machine types
COMPLETE_MARKER = ".completed"
TRAIN_SCORES_FILE = "train_scores.csv"
INCOMPLETE_SUFFIX = ".incomplete"  # a results folder being written, or left by a run that failed


def model_root(cfg: Config) -> Path:
    return Path(cfg.run.model_dir) / f"{cfg.run.mode}_data" / cfg.run.system


def result_dir(cfg: Config, scorer: str) -> Path:
    return Path(cfg.run.result_dir) / f"{cfg.run.mode}_data" / f"{cfg.run.system}_{scorer}"


def sibling_model_dir(model_dir: Path, system: str, group: str) -> Path:
    """The model folder of another `system` for `group` in the same models root as `model_dir`
    (`models/dev_data/ensemble/fan` -> `models/dev_data/<system>/<group>`)."""
    return Path(model_dir).parent.parent / system / group


def model_groups(scope: str, machines: list[str]) -> dict[str, list[str]]:
    """Model folder name -> machine types it serves: one per machine type, or one for all."""
    if scope == "machine":
        return {m: [m] for m in machines}
    if scope == "dataset":
        return {DATASET_GROUP: list(machines)}
    raise ValueError(f"unknown system scope {scope!r}")


def training_fingerprint(cfg: Config, machines: list[str]) -> str:
    """Hash of everything that changes a trained model; a finished model with the same hash is
    reused instead of retrained."""
    data = cfg.to_dict()["data"]
    for incidental in ("workers", "cache_dir", "machines"):
        data.pop(incidental)
    return fingerprint(
        {
            "system": cfg.run.system,
            "seed": cfg.run.seed,
            "mode": cfg.run.mode,
            "data": data,
            "machines": machines,
            "feature": cfg.to_dict()["feature"],
            "system_config": cfg.to_dict().get(cfg.run.system),
        }
    )
