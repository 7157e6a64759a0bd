"""Where a trained model is: `--model PATH` (a model folder, a system's folder of them, or one
exported file) -> a model folder, and a model folder -> one self-contained exported file.

An exported model is a zip archive holding `manifest.json` (format, system, the clips' channel
count) and exactly what scoring reads from a model folder: the files the system's `save` writes
(weights, fitted scorers, k-NN banks, parameters), `config.yaml` (the training settings),
`train_scores.csv` (the training clips' scores: thresholds and percentiles) and the completed
marker. Reading one unpacks it into a temporary folder that is removed when the caller is done.
The files are pickles (scikit-learn detectors, PyTorch state): open only models you trust.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.atomic import atomic_path
from core.layout import COMPLETE_MARKER, DATASET_GROUP, TRAIN_SCORES_FILE
from datasets.catalog import year_info
from datasets.manifest import DatasetError, find_raw_dir, official_raw_dir
from networks.registry import get_system
from networks.system import ModelFileError
from networks.train_scores import read_train_scores

MANIFEST = "manifest.json"
EXPORT_FORMAT = 1
CONFIG_FILE = "config.yaml"
NEEDED_KEYS = (("run", "system"), ("run", "mode"), ("data", "root"), ("data", "year"))  # what is read here


@dataclass(frozen=True)
class ModelSource:
    """A model folder ready to load, and what its clips must look like."""

    folder: Path
    system: str  # a name in networks.registry.SYSTEMS
    expected_channels: int | None  # channel count of the training data set; None accepts any
    origin: Path  # what the user named: the folder or the exported file


def model_folder(path: Path, machine: str | None) -> Path:
    """The model folder `path` names: itself (it holds a completed marker or a configuration), its
    `all/` (systems with one model for all machine types), or its `<machine>/` (or its only subfolder).

    Raises:
        ModelFileError: nothing there looks like a model; the message lists the subfolders.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelFileError(
            f"model {path} does not exist: give a model folder (models/dev_data/<system>/<machine>) "
            "or a file written by python -m tools.export"
        )
    if (path / COMPLETE_MARKER).exists() or (path / CONFIG_FILE).exists():
        return path
    children = sorted(d.name for d in path.iterdir() if d.is_dir())
    if DATASET_GROUP in children:
        return path / DATASET_GROUP
    if machine is not None and machine in children:
        return path / machine
    if machine is None and len(children) == 1:
        return path / children[0]
    hint = f"no model for machine type {machine!r} in {path}" if machine else f"{path} holds several models"
    raise ModelFileError(f"{hint}: give one model folder or --machine NAME (there: {', '.join(children) or 'nothing'})")


def training_channels(config: dict) -> int | None:
    """The channel count of the data a model was trained on (`config`: its resolved configuration):
    the catalogue's for the official DCASE layout; None (any) for own recordings or data no longer there."""
    data, mode = config["data"], config["run"]["mode"]
    try:
        official = find_raw_dir(data["root"], data["year"], mode) == official_raw_dir(data["root"], data["year"], mode)
    except DatasetError:
        return None
    return year_info(data["year"]).channels if official else None


def read_model_config(folder: Path) -> dict:
    """The resolved configuration a model was trained with (`<folder>/config.yaml`), as plain YAML."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{path} is missing: the model folder is incomplete (train it again with ./01_train.sh)")
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        raise ModelFileError(f"{path} is damaged (not YAML)") from None
    sections = config if isinstance(config, dict) else {}
    missing = [f"{s}.{k}" for s, k in NEEDED_KEYS if not isinstance(sections.get(s), dict) or k not in sections[s]]
    if missing:
        raise ModelFileError(f"{path} is damaged (no {', '.join(missing)}): not the configuration 01_train.sh writes")
    return config


@contextmanager
def open_model(path: Path, machine: str | None = None) -> Iterator[ModelSource]:
    """The model `path` names, as a folder to load from while the block runs.

    A `ModelFileError` raised in the block about a file of an exported model names it as
    `<exported file>:<member>` instead of its temporary copy.

    Raises:
        ModelFileError: no model there, a damaged or foreign exported file, or an unknown system.
    """
    path = Path(path)
    if path.is_file():
        with tempfile.TemporaryDirectory(prefix="model-") as tmp:
            manifest = _unpack(path, Path(tmp))
            try:
                yield ModelSource(Path(tmp), manifest["system"], manifest["expected_channels"], path)
            except ModelFileError as e:
                raise ModelFileError(str(e).replace(f"{tmp}/", f"{path}:")) from None
        return
    folder = model_folder(path, machine)
    config = read_model_config(folder)
    yield ModelSource(folder, _known_system(config["run"]["system"], folder), training_channels(config), path)


def export_model(folder: Path, out: Path) -> list[str]:
    """Write the complete model in `folder` as one file `out` (atomically); return its members.

    The system is loaded and saved again rather than its folder copied, so the file holds exactly
    what `load` reads (no training checkpoints or logs), and a damaged model is refused here.

    Raises:
        ModelFileError: the model is incomplete or damaged; naming the file.
    """
    folder = Path(folder)
    config = read_model_config(folder)
    name = _known_system(config["run"]["system"], folder)
    if not (folder / COMPLETE_MARKER).is_file():
        raise ModelFileError(f"no trained model in {folder} (its {COMPLETE_MARKER} marker is missing)")
    read_train_scores(folder / TRAIN_SCORES_FILE)  # refuses a damaged table before anything is written
    system = get_system(name).load(folder)
    manifest = {"format": EXPORT_FORMAT, "system": name, "expected_channels": training_channels(config)}
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        staging = Path(tmp)
        system.save(staging)
        for kept in (CONFIG_FILE, TRAIN_SCORES_FILE, COMPLETE_MARKER):
            shutil.copyfile(folder / kept, staging / kept)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        members = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        with atomic_path(Path(out)) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in members:
                archive.write(staging / member, member)
    return members


def _unpack(path: Path, into: Path) -> dict:
    """Check and unpack an exported model; return its manifest."""
    what = f"{path} is not a model file written by python -m tools.export"
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise ModelFileError(f"{path} is damaged ({broken} fails its checksum): export it again")
            manifest = json.loads(archive.read(MANIFEST))
            if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
                found = manifest.get("format") if isinstance(manifest, dict) else None
                raise ModelFileError(
                    f"{path} was exported by another version (format {found}, expected {EXPORT_FORMAT}): export the "
                    "model folder again with python -m tools.export"
                )
            archive.extractall(into)
    except KeyError:
        raise ModelFileError(f"{what} (no {MANIFEST} in it)") from None
    except (zipfile.BadZipFile, EOFError, json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        raise ModelFileError(f"{what}, or it is damaged ({type(e).__name__})") from None
    _known_system(manifest.get("system"), path)
    return manifest


def _known_system(name: object, where: Path) -> str:
    try:
        get_system(str(name))
    except KeyError as e:
        raise ModelFileError(f"{where}: {str(e).strip(chr(34))}") from None
    return str(name)
