"""The BEATs system's parts on real tensors and real files: pooling, fixed-length batches, the
classifier, layer-wise learning rates, the schedule, LoRA, and fit/save/load of the System."""

from __future__ import annotations

import logging
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from core.config import load_config
from datasets.audio import AudioError
from datasets.clip_batches import fit_length, stack_waves
from datasets.manifest import DatasetError, machine_clips, open_dataset
from networks.beats import load_beats
from networks.beats.system import ENCODER_FILE, MODEL_FILE, BeatsSystem
from networks.beats.training import (
    CHECKPOINT_FILE,
    TRAINING_LOG_FILE,
    BeatsClassifier,
    apply_lora,
    epoch_plan,
    lr_factor,
    merge_lora,
    parameter_groups,
    resolve_amp,
)
from networks.margin_heads import get_head
from networks.pooling import AttentiveStatisticsPooling, MeanPooling, get_pooling
from networks.system import ModelFileError, Runtime

TINY = {
    "beats.checkpoint": "none",
    "beats.preset": "tiny",
    "beats.clip_seconds": 2.0,
    "beats.tuning": "finetune",
    "beats.epochs": 1,
    "beats.batch_size": 16,
    "beats.encoder_lr": 1e-3,
    "beats.threads": 1,
    "beats.smote_per_class": 0,
    "data.workers": 1,
}


RUNTIME = Runtime(torch.device("cpu"), load_config().data, None)


def _config(**overrides):
    return load_config(overrides={**TINY, **{f"beats.{k}" if "." not in k else k: v for k, v in overrides.items()}})


def _tiny_classifier(freeze=False, n_classes=3):
    torch.manual_seed(0)
    encoder = load_beats(None, preset="tiny")
    return BeatsClassifier(encoder, get_pooling("attentive", 64, 16), 32, get_head("adacos", 32, n_classes), freeze)


# ---- pooling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("pooling", [AttentiveStatisticsPooling(8, 4), MeanPooling(8)])
def test_padded_tokens_never_change_the_pooled_vector(pooling):
    torch.manual_seed(0)
    real = torch.randn(1, 5, 8)
    padded = torch.cat([real, 100 * torch.randn(1, 3, 8)], dim=1)
    mask = torch.tensor([[False] * 5 + [True] * 3])
    alone = pooling(real)
    assert alone.shape == (1, pooling.out_dim)
    assert torch.allclose(pooling(padded, mask), alone, atol=1e-5)
    assert not torch.allclose(pooling(padded), alone, atol=1e-2)


def test_attentive_statistics_with_uniform_attention_are_mean_and_std():
    pooling = AttentiveStatisticsPooling(4, 3)
    torch.nn.init.zeros_(pooling.attention[2].weight)
    torch.nn.init.zeros_(pooling.attention[2].bias)
    x = torch.randn(2, 7, 4)
    out = pooling(x)
    assert torch.allclose(out[:, :4], x.mean(dim=1), atol=1e-6)
    assert torch.allclose(out[:, 4:], x.std(dim=1, unbiased=False), atol=1e-5)
    with pytest.raises(KeyError, match="unknown pooling 'max'; valid: attentive, mean"):
        get_pooling("max", 4, 3)


# ---- fixed-length clips ----------------------------------------------------------------------------


def test_clips_are_cropped_or_padded_with_a_mask():
    long, short = np.arange(10, dtype=np.float32), np.ones(3, dtype=np.float32)
    assert fit_length(long, 4)[0].tolist() == [0, 1, 2, 3] and fit_length(long, 4)[1] == 4
    padded, valid = fit_length(short, 5)
    assert padded.tolist() == [1, 1, 1, 0, 0] and valid == 3
    wave, mask = stack_waves([long, short], 6)
    assert wave.shape == (2, 6) and mask.tolist() == [[False] * 6, [False] * 3 + [True] * 3]


# ---- classifier, optimiser groups, schedule ---------------------------------------------------------


def test_classifier_shapes_and_a_frozen_encoder_stays_put():
    model = _tiny_classifier(freeze=True)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    fbank = torch.randn(4, 198, 128)
    mask = torch.zeros(4, 198, dtype=torch.bool)
    mask[1, 100:] = True
    model.train()
    assert not model.encoder.training
    losses, logits = model(fbank, mask, torch.tensor([0, 1, 2, 0]))
    assert losses.shape == (4,) and logits.shape == (4, 3)
    optimiser = torch.optim.AdamW(parameter_groups(model, _config().beats))
    losses.mean().backward()
    optimiser.step()
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert model.embed_wave(torch.randn(2, 32000) * 0.1, None).shape == (2, 32)


def test_layer_wise_learning_rates_and_weight_decay_groups():
    cfg = _config(lr=1e-3, encoder_lr=1e-4, layer_decay=0.5, weight_decay=0.05).beats
    groups = parameter_groups(_tiny_classifier(), cfg)
    lrs = {(g["name"], g["weight_decay"]): g["lr"] for g in groups}
    assert lrs[("encoder2", 0.05)] == pytest.approx(1e-4)  # top layer
    assert lrs[("encoder1", 0.05)] == pytest.approx(5e-5)
    assert lrs[("encoder0", 0.05)] == pytest.approx(2.5e-5)  # patch embedding, positional conv
    assert lrs[("head", 0.05)] == pytest.approx(1e-3) and ("head", 0.0) in lrs
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0.0 for p in g["params"]}
    model = _tiny_classifier()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = parameter_groups(model, cfg)
    assert all(
        names[id(p)].endswith("bias")
        or p.ndim <= 1
        or "weight_g" in names[id(p)]
        or "relative_attention_bias" in names[id(p)]
        for g in groups
        if g["weight_decay"] == 0
        for p in g["params"]
    )
    assert no_decay


def test_warm_up_then_cosine_cycles_with_restarts():
    cfg = _config(epochs=5, warmup_epochs=1.0, restart_period=2.0).beats
    factors = [lr_factor(step, 4, cfg) for step in range(20)]
    assert factors[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert factors[4] == factors[12] == pytest.approx(1.0) and factors[8] == pytest.approx(0.5)  # cycles of 8 steps
    assert factors[6] == pytest.approx(0.5 * (1 + math.cos(math.pi * 2 / 8)))
    single = _config(epochs=3, warmup_epochs=0.0, restart_period=0.0).beats
    assert lr_factor(0, 10, single) == 1.0 and lr_factor(15, 10, single) == pytest.approx(0.5)


def test_epoch_plan_is_seeded_and_every_process_gets_a_clip():
    plan = epoch_plan(10, epoch=1, seed=3, batch_size=4, grad_accum=2, world=3)
    assert [[len(mb) for mb in step] for step in plan] == [[4, 4]]  # the last batch of 2 < 3 processes
    assert epoch_plan(10, 1, 3, 4, 2, 1)[0][0].tolist() == plan[0][0].tolist()
    assert epoch_plan(10, 2, 3, 4, 2, 1)[0][0].tolist() != plan[0][0].tolist()


def test_mixed_precision_is_for_gpus():
    assert resolve_amp("auto", torch.device("cpu")) is None and resolve_amp("bf16", torch.device("cpu")) is None
    with pytest.raises(ValueError, match="beats.amp must be one of auto, bf16, fp16, off"):
        resolve_amp("fp8", torch.device("cpu"))


def test_lora_trains_only_adapters_and_merges_back_into_a_plain_encoder():
    model = _tiny_classifier()
    model.encoder = apply_lora(model.encoder, rank=4, alpha=8)
    trainable = [n for n, p in model.encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".")[-4] for n in trainable} == {"q_proj", "k_proj", "v_proj", "out_proj"}
    with torch.no_grad():
        for n, p in model.encoder.named_parameters():
            if "lora_B" in n:
                p.normal_()
    wave = torch.randn(2, 32000) * 0.1
    model.eval()
    with torch.no_grad():
        adapted = model.embed_wave(wave, None)
        model.encoder = merge_lora(model.encoder)
        merged = model.embed_wave(wave, None)
    assert type(model.encoder).__name__ == "BEATs" and torch.allclose(adapted, merged, atol=1e-4)


# ---- the System on real files --------------------------------------------------------------------------


def _clips(corpus, machines=("SynthFan", "SynthValve"), per_domain=(12, 4)):
    dataset = open_dataset(corpus, 2024, "dev", list(machines))
    clips = []
    for m in machines:
        train = dataset.clips(m, "train")
        clips += [c for c in train if c.domain == "source"][: per_domain[0]] + [
            c for c in train if c.domain == "target"
        ][: per_domain[1]]
    return dataset, clips


def test_fit_save_load_round_trip_and_resume_files(demo_corpus, tmp_path):
    dataset, clips = _clips(demo_corpus)
    cfg = _config(head="subcluster_adacos", subclusters=2)
    torch.manual_seed(0)
    system = BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path)
    assert system.train_scores_["knn"].shape == (len(clips),) and np.isfinite(system.train_scores_["knn"]).all()
    assert len(system.classes_) == 6  # 2 machines x (2 source attribute values + 1 target)
    assert (tmp_path / CHECKPOINT_FILE).is_file()
    log = (tmp_path / TRAINING_LOG_FILE).read_text().splitlines()
    assert log[0] == "epoch,loss,accuracy,lr,encoder_lr,scale,seconds,clips" and len(log) == 2
    system.save(tmp_path)
    loaded = BeatsSystem.load(tmp_path)
    test = dataset.clips("SynthValve", "test")[:10]
    assert np.allclose(loaded.score(test, "knn", RUNTIME), system.score(test, "knn", RUNTIME), atol=1e-5)
    assert loaded.classes_ == system.classes_
    encoder = load_beats(tmp_path / ENCODER_FILE)  # the official format, LoRA-free
    assert encoder.cfg.encoder_layers == 2


def test_a_saved_model_of_another_architecture_is_rejected_with_its_keys(demo_corpus, tmp_path):
    _, clips = _clips(demo_corpus, ("SynthPump",), (6, 2))
    cfg = _config(tuning="frozen", pooling="mean")
    BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path).save(tmp_path)
    state = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    state["params"]["beats"]["pooling"] = "attentive"
    torch.save(state, tmp_path / MODEL_FILE)
    with pytest.raises(ModelFileError, match=r"(?s)pooling does not match.*missing keys \(4\).*attention.0.weight"):
        BeatsSystem.load(tmp_path)
    encoder = torch.load(tmp_path / ENCODER_FILE, weights_only=True)
    encoder["model"]["extra.weight"] = encoder["model"].pop("layer_norm.weight")
    torch.save(encoder, tmp_path / ENCODER_FILE)
    with pytest.raises(
        ModelFileError,
        match=r"(?s)encoder.pt: BEATs checkpoint does not match.*missing keys \(1\).*"
        r"layer_norm.weight.*unexpected keys \(1\).*extra.weight",
    ):
        BeatsSystem.load(tmp_path)


def test_frozen_mode_with_a_pretrained_checkpoint_trains_nothing_and_drops_an_audioset_head(
    demo_corpus, tmp_path, beats_reference_dir, caplog
):
    caplog.set_level(logging.INFO)
    _, clips = _clips(demo_corpus, ("SynthGearbox",), (10, 3))
    checkpoint = beats_reference_dir / "tiny_beats_finetuned_official_format.pt"
    cfg = _config(tuning="frozen", pooling="mean", checkpoint=str(checkpoint))
    system = BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path)
    assert not (tmp_path / CHECKPOINT_FILE).exists() and system.history_ == []
    assert "no training" in caplog.text and "dropping the AudioSet predictor" in caplog.text
    reference = load_beats(checkpoint)
    wave = torch.randn(1, 32000) * 0.05
    with torch.no_grad():
        expected = reference.extract_features(wave)[0].mean(dim=1)
        assert torch.allclose(system.model_.embed_wave(wave, None), expected, atol=1e-5)
    system.save(tmp_path)
    assert load_beats(tmp_path / ENCODER_FILE).predictor is None


def test_short_long_and_broken_clips(demo_corpus, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    _, clips = _clips(demo_corpus, ("SynthFan",), (8, 2))
    data = tmp_path / "data" / "SynthFan"
    shutil.copytree(demo_corpus / "dev_data" / "raw" / "SynthFan", data)
    test = sorted((data / "test").glob("*.wav"))[:3]
    wave, rate = sf.read(test[0], dtype="float32")
    sf.write(test[0], wave[: rate // 2], rate)  # 0.5 s
    sf.write(test[1], np.concatenate([wave, wave]), rate)  # 4 s
    cfg = _config(tuning="frozen", pooling="mean")
    system = BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path / "model")
    mine = [c for c in machine_clips(tmp_path / "data", "SynthFan", "test") if c.path in test]
    scores = system.score(mine, "knn", RUNTIME)
    assert np.isfinite(scores).all() and len(set(scores.round(6))) == 3
    assert "1 clip(s) longer than 2.00 s keep their first 2.00 s; 1 shorter clip(s) are zero-padded" in caplog.text
    test[2].write_bytes(b"RIFF\x00")
    with pytest.raises(AudioError, match=test[2].name):
        system.score(mine, "knn", RUNTIME)


def test_one_class_needs_the_frozen_mean_option(demo_corpus, tmp_path):
    _, clips = _clips(demo_corpus, ("SynthValve",), (3, 0))
    clips = [c for c in clips if c.attributes == clips[0].attributes]
    cfg = _config()
    with pytest.raises(DatasetError, match="at least two classes.*--beats.tuning frozen --beats.pooling mean"):
        BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path)


def test_a_missing_checkpoint_names_the_official_files_and_the_config_key(demo_corpus, tmp_path):
    _, clips = _clips(demo_corpus, ("SynthValve",), (4, 2))
    cfg = _config(checkpoint=str(tmp_path / "BEATs_iter3_plus_AS2M.pt"))
    with pytest.raises(DatasetError, match=r"(?s)checkpoint not found.*BEATs_iter3_plus_AS2M.pt.*beats.checkpoint"):
        BeatsSystem.from_config(cfg).fit(clips, RUNTIME, tmp_path)
