"""The typed configuration: `baseline.yaml` plus command-line overrides -> one `Config` object.

Reads `baseline.yaml`, whose nested sections mirror the dataclasses below: every key must be
present there (it is the single source of truth for defaults) and no unknown key is accepted.
Another configuration file (`--config FILE`: one written by `tools.tune`, or a saved
`config.yaml`) has the same shape but may be partial: its keys are merged over `baseline.yaml`'s
and checked the same way. Overrides come last, as `{"section.key": value}` pairs (`core.cli` turns the command line into
them). Types, choices (`Literal`) and ranges (`Range`) are checked here, when the configuration is
loaded, so a bad value stops a run before any work with a one-line error naming the key.
Writes nothing except through `save_config`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import yaml

from core.atomic import write_text

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "baseline.yaml"


class ConfigError(ValueError):
    """A configuration file or override that does not fit the schema."""


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric key, checked at load time; `open_low` excludes `low` itself."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def violation(self, value: float) -> str | None:
        """Why `value` is out of range, or None."""
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return f"must be {'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None and (value > self.high or (self.open_high and value == self.high)):
            return f"must be {'<' if self.open_high else '<='} {self.high:g}"
        return None


@dataclass(frozen=True)
class Matches:
    """A string key that must match `pattern` (described for the error message)."""

    pattern: str
    description: str


PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, open_low=True)]
NonNegativeFloat = Annotated[float, Range(0)]
OpenFraction = Annotated[float, Range(0, 1, open_low=True, open_high=True)]  # strictly between 0 and 1
# Names of the transforms that grow small BEATs classes (networks.beats.balancing maps them to
# audiomentations); listed here so that a typo is refused when the configuration is loaded.
Augmentation = Literal["gaussian_noise", "time_stretch", "pitch_shift", "shift"]
ClipStatistic = Literal["mean", "std", "max", "min", "median"]
# Feature groups of the classical system (networks.classical.features builds them).
ClassicalFeature = Literal["logmel_stats", "modulation", "impulsiveness", "long_term_spectrum"]


@dataclass
class RunConfig:
    mode: Literal["dev", "eval"]
    system: str  # a name in networks.registry.SYSTEMS
    seed: NonNegativeInt
    device: Annotated[str, Matches(r"auto|cpu|cuda(:\d+)?", "auto, cpu, cuda or cuda:N")]
    model_dir: str
    result_dir: str
    force: bool  # retrain although a finished model with the same configuration exists


@dataclass
class DataConfig:
    root: str
    year: Annotated[int, Range(2020)]
    machines: list[str]  # empty: every machine type found on disk
    sample_rate: PositiveInt
    channel: NonNegativeInt  # which channel of a multi-channel WAV is used
    on_bad_file: Literal["error", "skip"]  # (training clips only; a broken test clip always stops the run)
    workers: PositiveInt  # processes for decoding and feature extraction
    cache_dir: str


@dataclass
class FeatureConfig:
    n_fft: PositiveInt
    win_length: PositiveInt
    hop_length: PositiveInt
    n_mels: PositiveInt
    power: PositiveFloat
    fmin: NonNegativeFloat
    fmax: PositiveFloat | None  # None: half the sample rate


@dataclass
class ScoreConfig:
    method: str  # a scorer of the chosen system; "default" picks the system's first


@dataclass
class DecisionConfig:
    threshold_quantile: OpenFraction


@dataclass
class MetricsConfig:
    max_fpr: Annotated[float, Range(0, 1, open_low=True)]


@dataclass
class ClassicalConfig:
    features: list[ClassicalFeature]  # feature groups, each standardised and scored on its own
    combine: Literal["mean", "concat"]  # mean of the groups' standardised scores, or one detector on all groups
    domains: Literal["pooled", "separate"]  # one model per section, or one per section and domain (smaller score wins)
    statistics: list[ClipStatistic]  # logmel_stats: per-mel statistics over time
    bands: PositiveInt  # modulation, impulsiveness: log-spaced frequency bands from 50 Hz to half the sample rate
    spectrum_bins: PositiveInt  # long_term_spectrum: equal-width bands from 0 Hz to half the sample rate
    target_prior: NonNegativeFloat  # gaussian, separate: weight (in clips) of the source covariance in a target's
    n_neighbors: PositiveInt  # knn
    lof_neighbors: PositiveInt  # lof
    iforest_trees: PositiveInt  # iforest
    covariance_shrinkage: bool  # gaussian: Ledoit-Wolf instead of the empirical covariance


@dataclass
class DownloadConfig:
    jobs: PositiveInt  # parallel downloads
    retries: NonNegativeInt  # further attempts per file after a network error
    backoff_seconds: NonNegativeFloat  # wait before the first retry; doubles with each retry
    timeout_seconds: PositiveFloat  # socket timeout of one request
    chunk_bytes: PositiveInt  # bytes read per step of a transfer
    keep_zips: bool  # keep verified zips after unpacking (a --force re-unpack then needs no download)
    label_list_url: str | None  # None: the official list in the catalogue; else a URL or path, {year} filled in


# The autoencoder networks (networks.autoencoder.networks.NETWORKS); listed here so that a typo is
# refused, with the valid names, when the configuration is loaded.
AutoencoderNetwork = Literal["dense", "conv", "lstm", "vae"]


@dataclass
class AutoencoderConfig:
    network: AutoencoderNetwork  # dense (the official one) | conv | lstm | vae
    frames: PositiveInt  # log-mel frames stacked into one input vector (5 x 128 mels = 640)
    encoder_dims: list[
        PositiveInt
    ]  # dense, vae: widths of the encoder's dense layers; every network: the last is the bottleneck
    conv_channels: list[PositiveInt]  # conv: channels of the stride-2 convolutions along the mel axis
    conv_kernel: Literal[3, 5, 7]  # conv: kernel length along the mel axis (odd, so a layer halves it exactly)
    lstm_hidden: PositiveInt  # lstm: hidden units of the encoder and the decoder LSTM
    vae_beta: NonNegativeFloat  # vae: weight of the KL divergence (per input value) against the squared error
    batch_norm_momentum: Annotated[
        float, Range(0, 1, open_low=True)
    ]  # PyTorch convention (weight of the new batch statistics)
    batch_norm_eps: PositiveFloat
    learning_rate: PositiveFloat  # Adam
    batch_size: Annotated[int, Range(2)]  # context vectors per step (batch normalisation needs two)
    epochs: PositiveInt
    validation_split: Annotated[
        float, Range(0, 1, open_high=True)
    ]  # fraction of each domain's training clips held out to report a validation loss
    amp: bool  # mixed precision (float16 autocast) on CUDA; ignored on the CPU
    covariance_ridge: NonNegativeFloat  # Mahalanobis: added to the covariance diagonal, relative to its mean variance
    threads: NonNegativeInt  # CPU threads of the training steps (evaluation passes use all); 0 = PyTorch's default


@dataclass
class BeatsConfig:
    checkpoint: str | None  # official BEATs checkpoint file; none (or null): random weights from `preset`
    preset: Literal["full", "tiny"]  # architecture used when checkpoint is none
    clip_seconds: Annotated[
        float, Range(0.1, open_low=True)
    ]  # every clip is cropped or zero-padded (with a padding mask) to this length
    tuning: Literal["lora", "finetune", "frozen"]  # what of the encoder trains: LoRA adapters, all of it, nothing
    pooling: Literal["attentive", "mean"]  # token sequence -> one vector
    attention_dim: PositiveInt  # hidden width of the attentive statistics pooling
    embedding_dim: PositiveInt  # width of the embedding fed to the margin head and to the k-NN scorer
    head: Literal["adacos", "arcface", "subcluster_adacos"]
    subclusters: PositiveInt  # subcluster_adacos: centres per class
    margin: NonNegativeFloat  # arcface: additive angular margin (radians)
    scale: PositiveFloat  # arcface: logit scale (the AdaCos heads adapt theirs)
    smote_k: NonNegativeInt  # SMOTE neighbours; 0 turns balancing off
    smote_per_class: NonNegativeInt  # clips per class after balancing; 0 = as many as the largest class
    augment: list[Augmentation]  # audiomentations transforms that grow classes with fewer than smote_k + 1 clips
    epochs: PositiveInt
    batch_size: PositiveInt  # clips per forward pass, summed over all processes of a distributed run
    grad_accum: PositiveInt  # forward passes per optimiser step
    lr: PositiveFloat  # AdamW learning rate of the pooling, projection and head
    encoder_lr: NonNegativeFloat  # learning rate of the top encoder layer (or of its LoRA adapters)
    layer_decay: Annotated[
        float, Range(0, 1, open_low=True)
    ]  # each lower encoder layer gets this factor times the rate of the one above
    weight_decay: NonNegativeFloat  # AdamW, on matrices only
    warmup_epochs: NonNegativeFloat  # linear warm-up
    restart_period: NonNegativeFloat  # epochs per cosine cycle after the warm-up; 0 = one cycle to the end
    amp: Literal["auto", "bf16", "fp16", "off"]  # mixed precision on the GPU; the CPU runs float32
    lora_rank: PositiveInt
    lora_alpha: PositiveFloat
    knn_k: PositiveInt  # neighbours averaged by the k-NN scorer
    threads: NonNegativeInt  # CPU threads for torch; 0 = PyTorch's default (all cores)


@dataclass
class AuxiliaryConfig:
    branches: list[Literal["logmel", "spectrum"]]  # the inputs, each through its own CNN branch (each once)
    spectrum_bins: PositiveInt  # bands of the whole clip's log spectrum (spectrum branch)
    channels: list[PositiveInt]  # widths of the residual stages; each stage after the first halves the resolution
    blocks: PositiveInt  # residual blocks per stage
    pooling: Literal["mean", "attentive"]  # time pooling of the log-mel branch
    attention_dim: PositiveInt  # hidden width of the attentive pooling
    embedding_dim: PositiveInt  # width of each branch's output; the embedding concatenates the branches
    head: Literal["adacos", "arcface", "subcluster_adacos"]
    subclusters: PositiveInt  # subcluster_adacos: centres per class
    margin: NonNegativeFloat  # arcface: additive angular margin (radians)
    scale: PositiveFloat  # arcface: logit scale (the AdaCos heads adapt theirs)
    mixup_alpha: NonNegativeFloat  # mixup of two clips with a Beta(alpha, alpha) weight; 0 = off
    mask_fraction: Annotated[
        float, Range(0, 1, open_high=True)
    ]  # SpecAugment: one time and one mel mask of up to this fraction per clip; 0 = off
    train_frames: NonNegativeInt  # log-mel frames of the random crop trained on; 0 = the shortest training clip
    epochs: PositiveInt
    batch_size: Annotated[int, Range(2)]  # clips per step (batch normalisation needs two)
    lr: PositiveFloat  # AdamW, cosine decay to zero over all epochs
    weight_decay: NonNegativeFloat
    amp: bool  # bf16 autocast on GPUs that have it; the CPU runs float32
    ensemble: PositiveInt  # networks trained with seeds seed, seed + 1, ...; their standardised scores are averaged
    knn_k: PositiveInt  # knn scorer: neighbours averaged
    mahala_ridge: PositiveFloat  # mahala scorer: covariance loading relative to the mean variance of a bank
    threads: NonNegativeInt  # CPU threads for torch; 0 = PyTorch's default (all cores)


# A member of an ensemble: a registered system and, optionally, one of its scorers.
MemberName = Annotated[str, Matches(r"[A-Za-z0-9_]+(:[A-Za-z0-9_]+)?", "system or system:scorer")]


@dataclass
class EnsembleConfig:
    members: list[MemberName]  # e.g. classical:gaussian; each member reads its own section of this configuration
    weights: list[PositiveFloat]  # one per member, or none (equal weights)


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
    ensemble: EnsembleConfig
    download: DownloadConfig

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(
    path: str | Path = DEFAULT_CONFIG, overrides: dict[str, object] | None = None, defaults: Path = DEFAULT_CONFIG
) -> Config:
    """Read `defaults`, merge the (possibly partial) file `path` over it, apply `overrides`
    (`{"section.key": value}`), validate every key and type."""
    raw = _read_sections(Path(defaults))
    if Path(path).resolve() != Path(defaults).resolve():
        raw = _merge(raw, _read_sections(Path(path)))
    for dotted, value in (overrides or {}).items():
        _set_dotted(raw, dotted, value)
    return _build(Config, raw, where="")


def save_config(config: Config, path: Path) -> None:
    """Write the resolved configuration as YAML (atomically), so a result can be traced to it."""
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def fingerprint(sections: dict) -> str:
    """A short stable hash of some configuration sections (e.g. to key caches and models)."""
    blob = json.dumps(sections, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_sections(path: Path) -> dict:
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections")
    return raw


def _merge(base: dict, partial: dict) -> dict:
    """`base` with the keys of `partial` put over it, section by section (lists are replaced whole)."""
    merged = dict(base)
    for key, value in partial.items():
        both_sections = isinstance(merged.get(key), dict) and isinstance(value, dict)
        merged[key] = _merge(merged[key], value) if both_sections else value
    return merged


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
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in raw if k not in names]
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ConfigError(
            f"unknown config key {key!r}; valid keys{' in ' + repr(where) if where else ''}: {', '.join(names)}"
        )
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
    if origin is Annotated:
        inner, *checks = typing.get_args(hint)
        value = _coerce(inner, value, key)
        for check in checks:
            if isinstance(check, Range) and (why := check.violation(value)):
                raise ConfigError(f"config key {key!r} {why}, got {value!r}")
            if isinstance(check, Matches) and not re.fullmatch(check.pattern, value):
                raise ConfigError(f"config key {key!r} must be {check.description}, got {value!r}")
        return value
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"config key {key!r} must be one of {', '.join(map(str, choices))}; got {value!r}")
        return value
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
