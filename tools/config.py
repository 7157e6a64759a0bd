"""The typed configuration: `baseline.yaml` plus command-line overrides -> one `Config` object.

Reads a YAML file whose nested sections mirror the dataclasses below; every key must be present
in the file (it is the single source of truth for defaults) and no unknown key is accepted.
Overrides come last, as `--section.key value` pairs. Writes nothing except through `save_config`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from tools.atomic import write_text

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "baseline.yaml"


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass
class RunConfig:
    mode: str  # dev | eval
    system: str  # a name in networks.registry.SYSTEMS
    seed: int
    device: str  # auto | cpu | cuda | cuda:N
    model_dir: str
    result_dir: str
    force: bool  # retrain although a finished model with the same configuration exists


@dataclass
class DataConfig:
    root: str
    year: int
    machines: list[str]  # empty: every machine type found on disk
    sample_rate: int
    channel: int  # which channel of a multi-channel WAV is used
    on_bad_file: str  # error | skip (training clips only; a broken test clip always stops the run)
    workers: int  # processes for decoding and feature extraction
    cache_dir: str


@dataclass
class FeatureConfig:
    n_fft: int
    win_length: int
    hop_length: int
    n_mels: int
    power: float
    fmin: float
    fmax: float | None  # None: half the sample rate


@dataclass
class ScoreConfig:
    method: str  # a scorer of the chosen system; "default" picks the system's first


@dataclass
class DecisionConfig:
    threshold_quantile: float


@dataclass
class MetricsConfig:
    max_fpr: float


@dataclass
class ClassicalConfig:
    statistics: list[str]  # per-mel statistics over time: mean, std, max, min, median
    n_neighbors: int  # knn
    lof_neighbors: int  # lof
    iforest_trees: int  # iforest
    covariance_shrinkage: bool  # gaussian: Ledoit-Wolf instead of the empirical covariance


@dataclass
class DownloadConfig:
    jobs: int  # parallel downloads
    retries: int  # further attempts per file after a network error
    backoff_seconds: float  # wait before the first retry; doubles with each retry
    timeout_seconds: float  # socket timeout of one request
    chunk_bytes: int  # bytes read per step of a transfer
    keep_zips: bool  # keep verified zips after unpacking (a --force re-unpack then needs no download)
    label_list_url: str | None  # None: the official list in the catalogue; else a URL or path, {year} filled in


@dataclass
class AutoencoderConfig:
    frames: int  # log-mel frames stacked into one input vector (5 x 128 mels = 640)
    encoder_dims: list[int]  # widths of the encoder's dense layers, the last is the bottleneck; the decoder mirrors them
    batch_norm_momentum: float  # PyTorch convention (weight of the new batch statistics)
    batch_norm_eps: float
    learning_rate: float  # Adam
    batch_size: int  # context vectors per step
    epochs: int
    validation_split: float  # fraction of each domain's training clips held out to report a validation loss
    amp: bool  # mixed precision (float16 autocast) on CUDA; ignored on the CPU
    covariance_ridge: float  # Mahalanobis: added to the covariance diagonal, relative to its mean variance
    threads: int  # CPU threads of the training steps (evaluation passes use all); 0 = PyTorch's default


@dataclass
class BeatsConfig:
    checkpoint: str | None  # official BEATs checkpoint file; none (or null): random weights from `preset`
    preset: str  # architecture used when checkpoint is none: full | tiny
    clip_seconds: float  # every clip is cropped or zero-padded (with a padding mask) to this length
    mode: str  # finetune | lora | frozen
    pooling: str  # attentive | mean (token sequence -> one vector)
    attention_dim: int  # hidden width of the attentive statistics pooling
    embedding_dim: int  # width of the embedding fed to the margin head and to the k-NN scorer
    head: str  # adacos | arcface | subcluster_adacos
    subclusters: int  # subcluster_adacos: centres per class
    margin: float  # arcface: additive angular margin (radians)
    scale: float  # arcface: logit scale (the AdaCos heads adapt theirs)
    smote_k: int  # SMOTE neighbours; 0 turns balancing off
    smote_per_class: int  # clips per class after balancing; 0 = as many as the largest class
    augment: list[str]  # audiomentations transforms that grow classes with fewer than smote_k + 1 clips
    epochs: int
    batch_size: int  # clips per forward pass, summed over all processes of a distributed run
    grad_accum: int  # forward passes per optimiser step
    lr: float  # AdamW learning rate of the pooling, projection and head
    encoder_lr: float  # learning rate of the top encoder layer (or of its LoRA adapters)
    layer_decay: float  # each lower encoder layer gets this factor times the rate of the one above
    weight_decay: float  # AdamW, on matrices only
    warmup_epochs: float  # linear warm-up
    restart_period: float  # epochs per cosine cycle after the warm-up; 0 = one cycle to the end
    amp: str  # auto | bf16 | fp16 | off (mixed precision on the GPU; the CPU runs float32)
    lora_rank: int
    lora_alpha: float
    knn_k: int  # neighbours averaged by the k-NN scorer
    threads: int  # CPU threads for torch; 0 = PyTorch's default (all cores)


@dataclass
class AuxiliaryConfig:
    branches: list[str]  # logmel | spectrum: the inputs, each through its own CNN branch
    spectrum_bins: int  # bands of the whole clip's log spectrum (spectrum branch)
    channels: list[int]  # widths of the residual stages; each stage after the first halves the resolution
    blocks: int  # residual blocks per stage
    pooling: str  # mean | attentive: time pooling of the log-mel branch
    attention_dim: int  # hidden width of the attentive pooling
    embedding_dim: int  # width of each branch's output; the embedding concatenates the branches
    head: str  # adacos | arcface | subcluster_adacos
    subclusters: int  # subcluster_adacos: centres per class
    margin: float  # arcface: additive angular margin (radians)
    scale: float  # arcface: logit scale (the AdaCos heads adapt theirs)
    mixup_alpha: float  # mixup of two clips with a Beta(alpha, alpha) weight; 0 = off
    mask_fraction: float  # SpecAugment: one time and one mel mask of up to this fraction per clip; 0 = off
    train_frames: int  # log-mel frames of the random crop trained on; 0 = the shortest training clip
    epochs: int
    batch_size: int
    lr: float  # AdamW, cosine decay to zero over all epochs
    weight_decay: float
    amp: bool  # bf16 autocast on GPUs that have it; the CPU runs float32
    ensemble: int  # networks trained with seeds seed, seed + 1, ...; their standardised scores are averaged
    knn_k: int  # knn scorer: neighbours averaged
    mahala_ridge: float  # mahala scorer: covariance loading relative to the mean variance of a bank
    threads: int  # CPU threads for torch; 0 = PyTorch's default (all cores)


@dataclass
class Config:
    run: RunConfig
    data: DataConfig
    feature: FeatureConfig
    score: ScoreConfig
    decision: DecisionConfig
    metrics: MetricsConfig
    classical: ClassicalConfig
    autoencoder: AutoencoderConfig
    beats: BeatsConfig
    auxiliary: AuxiliaryConfig
    download: DownloadConfig

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: dict[str, object] | None = None) -> Config:
    """Read `path`, apply `overrides` (`{"section.key": value}`), validate every key and type."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return _build(Config, raw, where="")


def parse_overrides(args: list[str]) -> dict[str, object]:
    """Turn `["--train.epochs", "3", "--data.machines=fan,valve"]` into `{"train.epochs": 3, ...}`.

    Values are read as YAML scalars (so `3` is an int, `null` is None, `[a, b]` a list); keys are
    checked against the schema later, by `load_config`.
    """
    overrides: dict[str, object] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or "." not in arg.split("=", 1)[0]:
            raise ConfigError(f"unexpected argument {arg!r}: overrides look like --section.key value")
        if "=" in arg:
            key, text = arg[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(args):
                raise ConfigError(f"override {arg} has no value")
            key, text = arg[2:], args[i + 1]
            i += 2
        overrides[key] = yaml.safe_load(text) if text != "" else ""
    return overrides


def save_config(config: Config, path: Path) -> None:
    """Write the resolved configuration as YAML (atomically), so a result can be traced to it."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def fingerprint(sections: dict) -> str:
    """A short stable hash of some configuration sections (e.g. to key caches and models)."""
    blob = json.dumps(sections, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _set_dotted(raw: dict, dotted: str, value: object) -> None:
    parts = dotted.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError(f"unknown config key {dotted!r}: there is no section {part!r}")
        node = child
    node[parts[-1]] = value


def _build(cls: type, raw: object, where: str):
    if not isinstance(raw, dict):
        raise ConfigError(f"config section {where or 'top level'!r} must be a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(f"unknown config key {key!r}; valid keys{' in ' + repr(where) if where else ''}: {', '.join(names)}")
    missing = [n for n in names if n not in raw]
    if missing:
        key = f"{where}.{missing[0]}" if where else missing[0]
        raise ConfigError(f"config key {key!r} is missing (baseline.yaml must define every key)")
    values = {name: _coerce(hints[name], raw[name], f"{where}.{name}" if where else name) for name in names}
    return cls(**values)


def _coerce(hint, value, key: str):
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [o for o in options if o is not type(None)]
        return _coerce(inner, value, key)
    if origin is list:
        (item,) = typing.get_args(hint)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v] if value else []
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        return [_coerce(item, v, key) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be true or false, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r} must be an integer, got {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        # YAML 1.1 reads `1e-3` (no dot) as a string; people write it that way on command lines.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r} must be a string, got {value!r}")
    raise TypeError(f"config schema uses an unsupported type {hint!r} for {key!r}")
