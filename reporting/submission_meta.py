"""A run's settings and development results -> the `<label>.meta.yaml` of a DCASE Task 2 submission.

The official meta file has three sections: `submission` (label, name, abbreviation, authors with
their affiliation), `system` (`description`: sampling rate, acoustic features, augmentation,
machine-learning method, ensemble, attribute and external data usage, ...; `complexity`:
`total_parameters`; external data sets and pre-trained models; source code) and `results`
(`development_dataset`: per machine type `auc_source`, `auc_target`, `pauc`, in percent).
`build_meta` fills what the toolkit knows from the evaluation run's `config.yaml` and the
development run's `result.csv`; what only the participant knows is a string starting with
`PLACEHOLDER` (the check warns about each one left), and a user file merged over it (`merge_meta`)
supplies it. `meta_problem` checks a meta file's keys the way the organisers' tools read them.
Reads `result.csv` files; writes nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from reporting.result_tables import BASELINE_COLUMNS
from reporting.submission import SubmissionError

PLACEHOLDER = "FILL IN"
# Lastname_Institute_task2_N: the corresponding author's last name, the institute's abbreviation,
# the task and the index of the system (the rules allow four per task).
LABEL = re.compile(r"^(?P<team>[A-Za-z][A-Za-z-]*_[A-Za-z0-9-]+)_task2_(?P<index>[1-4])$")
MAX_SYSTEMS = 4
ABBREVIATION_LENGTH = 10
# result.csv column -> meta key, per machine type (the arithmetic mean over its sections).
DEV_COLUMNS = {"AUC (source)": "auc_source", "AUC (target)": "auc_target", "pAUC": "pauc"}
# Keys a meta file must hold; a nested dict names the keys of a sub-section.
REQUIRED_KEYS: dict = {
    "submission": {"label": None, "name": None, "abbreviation": None, "authors": None},
    "system": {
        "description": {
            "input_sampling_rate": None,
            "data_augmentation": None,
            "front_end": None,
            "acoustic_features": None,
            "embeddings": None,
            "machine_learning_method": None,
            "aggregation_method": None,
            "domain_adaptation_method": None,
            "domain_generalization_method": None,
            "ensemble_method_subsystem_count": None,
            "decision_making": None,
            "attribute_usage": None,
            "external_data_usage": None,
            "development_data_usage": None,
        },
        "complexity": {"total_parameters": None},
        "external_datasets": None,
        "pre_trained_models": None,
        "source_code": None,
    },
    "results": {"development_dataset": None},
}
AUTHOR_KEYS = ("lastname", "firstname", "email", "corresponding", "affiliation")
AFFILIATION_KEYS = ("institution", "department", "location")
BEATS_URL = "https://github.com/microsoft/unilm/tree/master/beats"
AUDIOSET_URL = "https://research.google.com/audioset/"


def label_problem(label: str) -> str | None:
    """Why `label` is not a valid Task 2 submission label, or None."""
    if LABEL.match(label):
        return None
    return (
        f"submission label {label!r} must look like Lastname_Institute_task2_N with N from 1 to "
        f"{MAX_SYSTEMS} (letters, digits and '-' in the institute), e.g. Smith_ACME_task2_1"
    )


@dataclass(frozen=True)
class DevResults:
    """Development results of one run, as fractions: machine -> {auc_source, auc_target, pauc}."""

    machines: dict[str, dict[str, float | None]]
    official_score: float | None


def read_dev_results(path: Path) -> DevResults:
    """Per machine type the arithmetic mean over its sections, and the official score, from a
    `result.csv` written by `02_test.sh` (empty cells, undefined values, become None).

    Raises:
        SubmissionError: the file is missing or is not laid out as `02_test.sh` writes it.
    """
    if not path.is_file():
        raise SubmissionError(f"{path} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    machines: dict[str, dict[str, float | None]] = {}
    official, machine = None, None
    for row in rows:
        if len(row) == 1 and row[0]:
            machine = row[0]
        elif row and row[0] == "arithmetic mean" and machine is not None:
            cells = dict(zip(BASELINE_COLUMNS[1:], row[1:]))
            machines[machine] = {key: _number(cells.get(column, "")) for column, key in DEV_COLUMNS.items()}
        elif row and row[0] == "official score" and len(row) > 1:
            official = _number(row[1])
    if not machines:
        raise SubmissionError(f"{path} holds no per-machine results (not a result.csv of ./02_test.sh)")
    return DevResults(machines, official)


def settings_differences(eval_config: dict, dev_config: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """`key (evaluation X, development Y)` for every setting that makes the two runs different
    systems or other numbers: the system, its seed and its section, the features, the audio input,
    the decision and the metric settings (the data, the machine types and where things are stored
    may differ).

    Args:
        ignore: keys of the system's section that do not change the system (thread counts).
    """
    system = eval_config["run"]["system"]
    compared = {
        "run": ("system", "seed"),
        "data": ("sample_rate", "channel"),
        "feature": tuple(eval_config["feature"]),
        "decision": tuple(eval_config["decision"]),
        "metrics": tuple(eval_config["metrics"]),
        system: tuple(k for k in eval_config.get(system, {}) if k not in ignore),
    }
    differences = []
    for section, keys in compared.items():
        for key in keys:
            ours = eval_config.get(section, {}).get(key)
            theirs = dev_config.get(section, {}).get(key)
            if ours != theirs:
                differences.append(f"{section}.{key} (evaluation {ours!r}, development {theirs!r})")
    return differences


def build_meta(label: str, config: dict, scorer: str, dev: DevResults | None) -> dict:
    """The meta file of one system: everything `config` (the evaluation run's resolved settings)
    and `dev` tell, placeholders for the rest.

    Args:
        scorer: the scorer the run used (its results folder is `<system>_<scorer>`).
        dev: the matching development run's results; None leaves `development_dataset` empty.
    """
    match = LABEL.match(label)
    lastname, institute = match["team"].split("_", 1) if match else (_fill("last name"), _fill("institute"))
    system = config["run"]["system"]
    # every description key the check requires, in its order; what the toolkit knows is filled below
    description = dict.fromkeys(REQUIRED_KEYS["system"]["description"])
    description.update(
        input_sampling_rate=f"{config['data']['sample_rate'] / 1000:g}kHz",
        acoustic_features="log-mel energies",
        machine_learning_method=_fill("machine-learning method"),
        development_data_usage="development",
    )
    extra: dict = {"external_datasets": None, "pre_trained_models": None}
    describe = _DESCRIPTIONS.get(system)
    if describe is None:
        description.update({k: _fill(k.replace("_", " ")) for k in description if k != "input_sampling_rate"})
        name = f"{system} ({scorer})"
    else:
        name = describe(config[system], scorer, description, extra)
    return {
        "submission": {
            "label": label,
            "name": name,
            "abbreviation": _abbreviation(system, scorer),
            "authors": [
                {
                    "lastname": lastname,
                    "firstname": _fill("first name"),
                    "email": _fill("e-mail address"),
                    "corresponding": True,
                    "affiliation": {
                        "institution": _fill(f"institution ({institute})"),
                        "department": _fill("department"),
                        "location": _fill("city, country"),
                    },
                }
            ],
        },
        "system": {
            "description": description,
            "complexity": {"total_parameters": _fill("number of parameters of the model(s)")},
            **extra,
            "source_code": _fill("URL of the source code, or null"),
        },
        "results": {"development_dataset": _dev_block(dev)},
    }


def merge_meta(generated: dict, user: dict) -> dict:
    """`user` over `generated`: mappings merge key by key, any other value (lists too) replaces."""
    merged = dict(generated)
    for key, value in user.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_meta(merged[key], value)
        else:
            merged[key] = value
    return merged


def meta_problem(meta: object, label: str) -> str | None:
    """Why a meta file's content would be refused (a missing key, another label, an author without
    a name, an abbreviation too long, ...), or None."""
    if not isinstance(meta, dict):
        return "does not hold a mapping with submission, system and results"
    missing = _missing_key(meta, REQUIRED_KEYS, "")
    if missing:
        return f"lacks the key {missing}"
    submission = meta["submission"]
    if submission["label"] != label:
        return f"submission.label is {submission['label']!r}, not the folder's name {label!r}"
    if len(str(submission["abbreviation"])) > ABBREVIATION_LENGTH:
        return f"submission.abbreviation {submission['abbreviation']!r} is longer than {ABBREVIATION_LENGTH} characters"
    authors = submission["authors"]
    if not isinstance(authors, list) or not authors:
        return "submission.authors must be a list of authors"
    for i, author in enumerate(authors):
        where = f"submission.authors[{i}]"
        if not isinstance(author, dict):
            return f"{where} must be a mapping ({', '.join(AUTHOR_KEYS)})"
        missing = [k for k in AUTHOR_KEYS if k not in author]
        affiliation = author.get("affiliation")
        if not missing and isinstance(affiliation, dict):
            missing = [f"affiliation.{k}" for k in AFFILIATION_KEYS if k not in affiliation]
        elif not missing:
            missing = ["affiliation (institution, department, location)"]
        if missing:
            return f"{where} lacks {missing[0]}"
    if not any(a.get("corresponding") is True for a in authors):
        return "no author is marked corresponding: true"
    dev = meta["results"]["development_dataset"]
    if dev is not None and not isinstance(dev, dict):
        return "results.development_dataset must map machine types to auc_source, auc_target and pauc"
    return None


def placeholders(meta: object, where: str = "") -> Iterator[str]:
    """The dotted keys whose value is still a placeholder."""
    if isinstance(meta, dict):
        for key, value in meta.items():
            yield from placeholders(value, f"{where}.{key}" if where else str(key))
    elif isinstance(meta, list):
        for i, value in enumerate(meta):
            yield from placeholders(value, f"{where}[{i}]")
    elif isinstance(meta, str) and meta.startswith(PLACEHOLDER):
        yield where


def _fill(what: str) -> str:
    return f"{PLACEHOLDER}: {what}"


def _abbreviation(system: str, scorer: str) -> str:
    short = {"autoencoder": "AE", "classical": "Clas", "beats": "BEATs", "auxiliary": "Aux"}.get(system, system)
    return f"{short}-{scorer}"[:ABBREVIATION_LENGTH]


def _dev_block(dev: DevResults | None) -> dict | None:
    if dev is None:
        return None
    return {
        machine: {key: None if v is None else 100.0 * v for key, v in values.items()}
        for machine, values in dev.machines.items()
    }


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def _missing_key(meta: dict, required: dict, where: str) -> str | None:
    for key, sub in required.items():
        path = f"{where}.{key}" if where else key
        if key not in meta:
            return path
        if sub is not None:
            if not isinstance(meta[key], dict):
                return f"{path}.{next(iter(sub))} ({path} must be a mapping)"
            missing = _missing_key(meta[key], sub, path)
            if missing:
                return missing
    return None


# What the toolkit knows of each system, from its configuration section. Each function fills the
# description (and the external data) in place and returns the system's name for the results tables.
def _autoencoder(settings: dict, scorer: str, description: dict, extra: dict) -> str:
    network = settings.get("network", "dense")  # models saved before the key existed are dense
    method = "VAE" if network == "vae" else "AE"
    description["machine_learning_method"] = f"{method}, Mahalanobis distance" if scorer == "mahala" else method
    description["aggregation_method"] = "average"
    if scorer == "mahala":
        description["domain_generalization_method"] = "covariance per domain (source, target), smaller distance"
    return f"{_NETWORK_NAMES[network]} autoencoder on {settings['frames']} stacked log-mel frames, {scorer} score"


_NETWORK_NAMES = {"dense": "Dense", "conv": "Convolutional", "lstm": "LSTM", "vae": "Variational"}


_CLASSICAL_METHODS = {
    "knn": "k-NN",
    "lof": "LOF",
    "iforest": "isolation forest",
    "gaussian": "Gaussian, Mahalanobis distance",
}


def _classical(settings: dict, scorer: str, description: dict, extra: dict) -> str:
    statistics = ", ".join(settings["statistics"])
    description["acoustic_features"] = f"log-mel energies ({statistics} per band over the clip)"
    description["machine_learning_method"] = _CLASSICAL_METHODS.get(scorer, scorer)
    description["aggregation_method"] = statistics
    if settings.get("domains") == "separate":
        description["domain_generalization_method"] = (
            "one model per domain (source, target), smaller standardised score"
        )
    return f"Clip log-mel statistics with a {_CLASSICAL_METHODS.get(scorer, scorer)} detector"


def _beats(settings: dict, scorer: str, description: dict, extra: dict) -> str:
    pretrained = settings["checkpoint"] is not None
    description["acoustic_features"] = "log-mel filterbank"
    description["embeddings"] = "BEATs" if pretrained else None
    description["machine_learning_method"] = f"BEATs transformer ({settings['tuning']}), {settings['head']}, k-NN"
    augmentation = (["SMOTE"] if settings["smote_k"] > 0 else []) + list(settings["augment"])
    description["data_augmentation"] = ", ".join(augmentation) or None
    description["aggregation_method"] = (
        "attentive statistics pooling" if settings["pooling"] == "attentive" else "average"
    )
    description["attribute_usage"] = "classification labels (machine, section, attributes)"
    if pretrained:
        description["external_data_usage"] = "pre-trained model"
        extra["pre_trained_models"] = [{"name": "BEATs", "url": BEATS_URL}]
        extra["external_datasets"] = [{"name": "AudioSet (pre-training of BEATs)", "url": AUDIOSET_URL}]
    return f"BEATs ({settings['tuning']}) with a {settings['head']} head, k-NN score"


def _auxiliary(settings: dict, scorer: str, description: dict, extra: dict) -> str:
    inputs = {"logmel": "log-mel energies", "spectrum": "spectrum"}
    description["acoustic_features"] = ", ".join(inputs[b] for b in settings["branches"])
    description["machine_learning_method"] = f"CNN, {settings['head']}, {scorer}"
    augmentation = (["mixup"] if settings["mixup_alpha"] > 0 else []) + (
        ["SpecAugment"] if settings["mask_fraction"] > 0 else []
    )
    description["data_augmentation"] = ", ".join(augmentation) or None
    description["aggregation_method"] = "attentive pooling" if settings["pooling"] == "attentive" else "average"
    description["attribute_usage"] = "classification labels (machine, section, attributes)"
    if settings["ensemble"] > 1:
        description["ensemble_method_subsystem_count"] = settings["ensemble"]
        description["decision_making"] = "average of standardised scores"
    return f"Auxiliary-classification CNN with a {settings['head']} head, {scorer} score"


def _ensemble(settings: dict, scorer: str, description: dict, extra: dict) -> str:
    members = ", ".join(settings["members"])
    description["machine_learning_method"] = f"score-level ensemble of {members}"
    description["ensemble_method_subsystem_count"] = len(settings["members"])
    description["decision_making"] = f"{scorer} of the members' per-section standardised scores"
    return f"Ensemble ({scorer}) of {members}"


_DESCRIPTIONS = {
    "autoencoder": _autoencoder,
    "classical": _classical,
    "beats": _beats,
    "auxiliary": _auxiliary,
    "ensemble": _ensemble,
}
