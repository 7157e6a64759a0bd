"""The BEATs system: one classifier for all machine types of a dataset, scored by cosine k-NN.

Reads the training clips of every machine type (waveforms, cropped or padded to
`beats.clip_seconds` with padding masks) and a BEATs checkpoint (`beats.checkpoint`, or random
weights from `beats.preset`). Writes, in the model folder: `checkpoint.pt` and `training_log.csv`
during training (`networks.beats.training`), and through `save` `encoder.pt` (the trained encoder
in the official BEATs checkpoint format, LoRA adapters merged) and `beats_system.pt` (pooling,
projection and head weights, class names, the training clips' embeddings and the k-NN banks).

Modes (`beats.tuning`):
- finetune: the whole encoder trains (layer-wise learning-rate decay);
- lora: LoRA adapters on the attention projections train, the encoder weights stay;
- frozen: the encoder does not train. With `pooling: mean` nothing trains at all: embeddings are
  the mean of the pre-trained token features (the fast option); with `pooling: attentive` the
  pooling, projection and head train on the frozen features.

Training targets are `machine_section_attribute` classes (`datasets.class_labels`), balanced by
`networks.beats.balancing`. Scorer `knn`: per section, the smaller standardised cosine k-NN distance
to the source and target training embeddings (`networks.knn_scoring`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from core.atomic import torch_save
from core.config import BeatsConfig, FeatureConfig
from core.runtime import autocast, distributed_rank_and_size, limit_threads
from datasets.audio import require_training_clips
from datasets.class_labels import ClassIndex, class_label
from datasets.clip_batches import clip_batches, decoded_chunks
from datasets.manifest import Clip, DatasetError
from networks.beats import BEATs, BEATsCheckpointError, check_state_dict, load_beats, save_beats
from networks.beats.balancing import balance_training_set, classes_to_grow, encoder_inputs
from networks.beats.training import CHECKPOINT_FORMAT, BeatsClassifier, Trainer, apply_lora, merge_lora, resolve_amp
from networks.knn_scoring import SectionKnn
from networks.margin_heads import get_head
from networks.pooling import get_pooling
from networks.system import AudioInput, ModelFileError, Runtime, System, load_model_state
from networks.training import training_stamp

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.pt"
MODEL_FILE = "beats_system.pt"
FORMAT_VERSION = 2  # 2: parameters stored with the model
DECODE_CHUNK = 256  # training clips decoded at a time while their fbank is built


def trains_a_classifier(cfg: BeatsConfig) -> bool:
    """Whether this configuration trains anything (frozen + mean pooling does not)."""
    return not (cfg.tuning == "frozen" and cfg.pooling == "mean")


def _load_checked(module: nn.Module, state: dict, what: str, path: Path) -> None:
    """Load `state` strictly; a mismatch names every missing, unexpected and reshaped key."""
    try:
        check_state_dict(
            module, state, f"{path}: the saved {what} does not match the architecture of its configuration"
        )
    except BEATsCheckpointError as e:
        raise ModelFileError(str(e)) from None
    module.load_state_dict(state)


def build_classifier(cfg: BeatsConfig, encoder: BEATs, n_classes: int, lora: bool) -> BeatsClassifier:
    """The network `cfg` describes on top of `encoder`: pooling, and unless the encoder is frozen
    with mean pooling, projection and margin head over `n_classes`, LoRA adapters if `lora`."""
    pooling = get_pooling(cfg.pooling, encoder.cfg.encoder_embed_dim, cfg.attention_dim)
    if not trains_a_classifier(cfg):
        return BeatsClassifier(encoder, pooling, None, None, freeze_encoder=True)
    if n_classes < 2:
        raise DatasetError(
            f"the BEATs classifier needs at least two classes (machine_section_attribute) but the training clips "
            f"form {n_classes}; with a single class use --beats.tuning frozen --beats.pooling mean"
        )
    head = get_head(cfg.head, cfg.embedding_dim, n_classes, cfg.subclusters, cfg.margin, cfg.scale)
    if lora:
        encoder = apply_lora(encoder, cfg.lora_rank, cfg.lora_alpha)
    return BeatsClassifier(encoder, pooling, cfg.embedding_dim, head, freeze_encoder=cfg.tuning == "frozen")


class BeatsSystem(System):
    section = "beats"
    scope = "dataset"
    scorers = ("knn",)
    test_time_keys = ("threads",)

    def __init__(self, settings: BeatsConfig, feature: FeatureConfig, audio: AudioInput, seed: int) -> None:
        super().__init__(settings, feature, audio, seed)
        self.classes_: list[str] = []
        self.model_: BeatsClassifier | None = None
        self.knn_: SectionKnn | None = None
        self.history_: list[dict] = []

    def num_samples(self) -> int:
        return int(round(self.settings.clip_seconds * self.audio.sample_rate))

    # ---- model -----------------------------------------------------------------------------

    def _load_encoder(self) -> BEATs:
        cfg = self.settings
        try:
            encoder = load_beats(cfg.checkpoint, preset=cfg.preset)
        except (FileNotFoundError, BEATsCheckpointError) as e:
            # A data problem the user fixes (fetch the file, fix the path): no traceback needed.
            raise DatasetError(str(e)) from None
        if encoder.predictor is not None:
            # The AudioSet head of a fine-tuned checkpoint is not used here; dropping it keeps the
            # saved encoder a plain pre-trained-format checkpoint and leaves no idle parameters.
            log.info("dropping the AudioSet predictor of the fine-tuned checkpoint %s", cfg.checkpoint)
            encoder.predictor = None
            encoder.cfg = encoder.cfg.replace(finetuned_model=False)
        if cfg.tuning == "lora" and (cfg.checkpoint is None or str(cfg.checkpoint).lower() == "none"):
            log.warning(
                "beats.tuning lora on a randomly initialised encoder: the adapters can learn little; "
                "use a pre-trained checkpoint, or beats.tuning finetune to train from scratch"
            )
        return encoder

    def _resume_stamp(self, clips: list[Clip]) -> str:
        """Everything that shapes the training trajectory except the number of epochs, so a rerun
        after a crash, or with more epochs, continues from the last checkpoint; and a rerun with
        another k-NN setting reuses the trained network."""
        return training_stamp(
            self.get_params(),
            self.section,
            ("epochs", "threads", "knn_k"),
            clips,
            format=FORMAT_VERSION,
            checkpoint_format=CHECKPOINT_FORMAT,
        )

    # ---- training --------------------------------------------------------------------------

    def fit(self, clips: list[Clip], runtime: Runtime, workdir: Path) -> BeatsSystem:
        cfg = self.settings
        with limit_threads(cfg.threads):
            encoder = self._load_encoder()
            if trains_a_classifier(cfg):
                kept, fbank, frame_mask, small_waves = self._training_inputs(clips, runtime)
                index = ClassIndex().fit(kept)
                self.classes_ = index.classes_
                self._log_classes(kept)
                model = build_classifier(cfg, encoder, len(self.classes_), lora=cfg.tuning == "lora")
                seed = self.seed
                data = balance_training_set(
                    fbank,
                    frame_mask,
                    index.transform(kept),
                    {self.classes_.index(k): v for k, v in small_waves.items()},
                    self.num_samples(),
                    cfg.smote_k,
                    cfg.smote_per_class,
                    cfg.augment,
                    self.audio.sample_rate,
                    seed,
                )
                del fbank, frame_mask, small_waves
                trainer = Trainer(model, cfg, runtime.device, Path(workdir), self._resume_stamp(kept), seed)
                self.history_ = trainer.fit(data)
                del data
                model.encoder = merge_lora(model.encoder)
            else:
                log.info("beats.tuning frozen with mean pooling: no training, embeddings of the pre-trained encoder")
                model, kept = build_classifier(cfg, encoder, 0, lora=False), clips
            self.model_ = model.to(runtime.device).eval()
            self.train_clips_, train_embeddings = self._embed(kept, runtime, training=True)
            require_training_clips(self.train_clips_)
            if not trains_a_classifier(cfg):
                self.classes_ = ClassIndex().fit(self.train_clips_).classes_
                self._log_classes(self.train_clips_)
            self.knn_ = SectionKnn(cfg.knn_k).fit(
                train_embeddings,
                [c.machine for c in self.train_clips_],
                [c.section for c in self.train_clips_],
                [c.domain for c in self.train_clips_],
            )
        self.train_scores_ = {"knn": self.knn_.train_scores_}
        return self

    def _log_classes(self, clips: list[Clip]) -> None:
        log.info(
            "%d training clips of %d machine type(s) in %d classes (machine_section_attribute)",
            len(clips),
            len({c.machine for c in clips}),
            len(self.classes_),
        )

    def _training_inputs(
        self, clips: list[Clip], runtime: Runtime
    ) -> tuple[list[Clip], torch.Tensor, torch.Tensor, dict[str, list]]:
        """Decode the training clips chunk by chunk into encoder input (fbank), so the waveforms of
        the whole dataset are never held at once; keep only the waveforms of classes that
        augmentation will grow.

        Returns:
            kept clips, fbank [clips, frames, 128] float16, frame mask [clips, frames], and
            class label -> waveforms of the small classes.
        """
        cfg, n = self.settings, self.num_samples()
        small_labels = classes_to_grow([class_label(c) for c in clips], cfg.smote_k)
        kept: list[Clip] = []
        fbanks, masks, small_waves = [], [], defaultdict(list)
        chunks = decoded_chunks(
            clips, runtime.data, runtime.expected_channels, n, DECODE_CHUNK, allow_skip=True, what="training clips"
        )
        with tqdm(
            total=len(clips),
            desc="fbank (train)",
            unit="clip",
            mininterval=1.0,
            disable=distributed_rank_and_size()[0] != 0,
        ) as bar:
            for chunk, waves in chunks:
                fbank, frame_mask = encoder_inputs(waves, n)
                fbanks.append(fbank)
                masks.append(frame_mask)
                for clip, wave in zip(chunk, waves):
                    label = class_label(clip)
                    if label in small_labels:
                        small_waves[label].append(wave)
                kept += chunk
                bar.update(len(chunk))
        require_training_clips(kept)
        return kept, torch.cat(fbanks), torch.cat(masks), dict(small_waves)

    # ---- embeddings and scores -------------------------------------------------------------

    @torch.inference_mode()
    def _embed(self, clips: list[Clip], runtime: Runtime, training: bool) -> tuple[list[Clip], np.ndarray]:
        """Embeddings [clips, embedding_dim] float32 of fixed-length clips (evaluation mode)."""
        model, device = self.model_.to(runtime.device), runtime.device
        model.eval()
        amp_dtype = resolve_amp(self.settings.amp, device)
        kept, parts = [], []
        batches = clip_batches(
            clips,
            runtime.data,
            runtime.expected_channels,
            self.num_samples(),
            self.settings.batch_size,
            allow_skip=training,
            what="training clips" if training else "test clips",
        )
        rank, _ = distributed_rank_and_size()
        with tqdm(
            total=len(clips),
            desc="embeddings (train)" if training else "embeddings (test)",
            unit="clip",
            disable=rank != 0,
            mininterval=1.0,
        ) as bar:
            for batch_clips, wave, mask in batches:
                with autocast(device, amp_dtype):
                    embedding = model.embed_wave(wave.to(device), mask.to(device))
                parts.append(embedding.float().cpu().numpy())
                kept += batch_clips
                bar.update(len(batch_clips))
        return kept, np.concatenate(parts) if parts else np.zeros((0, model.embedding_dim), dtype=np.float32)

    def score(self, clips: list[Clip], scorer: str, runtime: Runtime) -> np.ndarray:
        with limit_threads(self.settings.threads):
            _, embeddings = self._embed(clips, runtime, training=False)
        try:
            return self.knn_.score(embeddings, [c.machine for c in clips], [c.section for c in clips])
        except KeyError as e:  # a section without training clips: a data problem, named for the user
            raise DatasetError(str(e).strip('"')) from None

    # ---- persistence -----------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        model_dir = Path(model_dir)
        model = self.model_
        save_beats(model.encoder, model_dir / ENCODER_FILE)
        knn = self.knn_.state_dict()
        torch_save(
            {
                "format": FORMAT_VERSION,
                "params": self.get_params(),
                "classes": self.classes_,
                "pooling": {k: v.cpu() for k, v in model.pooling.state_dict().items()},
                "projection": None
                if model.projection is None
                else {k: v.cpu() for k, v in model.projection.state_dict().items()},
                "head": None if model.head is None else {k: v.cpu() for k, v in model.head.state_dict().items()},
                "history": self.history_,
                "train_clips": [[c.machine, c.section, c.domain, c.name] for c in self.train_clips_],
                "knn": {
                    "k": knn["k"],
                    "banks": {key: torch.from_numpy(v) for key, v in knn["banks"].items()},
                    "stats": knn["stats"],
                    "train_scores": torch.from_numpy(knn["train_scores"]),
                },
            },
            model_dir / MODEL_FILE,
        )

    @classmethod
    def load(cls, model_dir: Path) -> BeatsSystem:
        model_dir = Path(model_dir)
        path = model_dir / MODEL_FILE
        state = load_model_state(path, FORMAT_VERSION)
        system = cls.from_params(state["params"], BeatsConfig)
        system.classes_ = list(state["classes"])
        system.history_ = list(state["history"])
        cfg = system.settings
        try:
            encoder = load_beats(model_dir / ENCODER_FILE)
        except (BEATsCheckpointError, FileNotFoundError) as e:
            raise ModelFileError(f"{model_dir / ENCODER_FILE}: {e}") from None
        pooling = get_pooling(cfg.pooling, encoder.cfg.encoder_embed_dim, cfg.attention_dim)
        _load_checked(pooling, state["pooling"], "pooling", path)
        trained = state["projection"] is not None
        model = BeatsClassifier(encoder, pooling, cfg.embedding_dim if trained else None, None, freeze_encoder=True)
        if trained:
            _load_checked(model.projection, state["projection"], "projection", path)
        system.model_ = model.eval()
        system.knn_ = SectionKnn.from_state_dict(state["knn"])  # np.asarray there takes the stored CPU tensors
        system.train_scores_ = {"knn": system.knn_.train_scores_}
        return system
