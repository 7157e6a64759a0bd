"""A trained model folder -> the loaded system with the training scores of one scorer, checked.

Reads `<model folder>/.completed`, `train_scores.csv` and the system's own files (through its
`load`); writes nothing. Shared by every command that scores clips (`02_test.sh`, `04_score.sh`),
so they refuse the same incomplete, damaged or foreign models with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import Config
from core.layout import COMPLETE_MARKER, TRAIN_SCORES_FILE
from networks.system import ModelFileError, System
from networks.train_scores import read_train_scores


@dataclass
class TrainedModel:
    """A loaded system and the training scores of the scorer it will use."""

    folder: Path
    system: System
    scorer: str
    train_scores: dict[tuple[str, str], np.ndarray]  # (machine, section) -> [training clips] scores

    @property
    def sections(self) -> list[tuple[str, str]]:
        """(machine, section) pairs the model was trained on, sorted."""
        return sorted(self.train_scores)

    def use_settings(self, cfg: Config) -> TrainedModel:
        """Take the test-time settings of `cfg`; refuse it if any other parameter differs from the model's.

        Raises:
            ModelFileError: naming every differing key with its trained and current value.
        """
        differences = self.system.settings_differences(cfg)
        if differences:
            raise ModelFileError(
                f"the model in {self.folder} was trained with other settings: {'; '.join(differences)}"
            )
        self.system.with_test_time_settings(cfg)
        return self


def load_trained(folder: Path, system_cls: type[System], scorer: str) -> TrainedModel:
    """The complete model in `folder` with the training scores of `scorer`.

    Raises:
        ModelFileError: no completed marker (never trained, or a training that failed), a missing
            or damaged file, or training scores without `scorer`; the message names the folder or file.
    """
    folder = Path(folder)
    if not (folder / COMPLETE_MARKER).is_file():
        raise ModelFileError(f"no trained model in {folder} (its {COMPLETE_MARKER} marker is missing)")
    all_scores = read_train_scores(folder / TRAIN_SCORES_FILE)
    if scorer not in all_scores:
        raise ModelFileError(
            f"training scores {folder / TRAIN_SCORES_FILE} have no {scorer!r} column (it has "
            f"{', '.join(all_scores)}): the model was written by another version"
        )
    return TrainedModel(folder, system_cls.load(folder), scorer, all_scores[scorer])


def params_as_overrides(system: System) -> dict[str, object]:
    """The system's parameters as `{"section.key": value}` configuration overrides, so a command
    that scores with a given model needs none of its training options."""
    return {
        f"{section}.{key}": value for section, values in system.get_params().items() for key, value in values.items()
    }
