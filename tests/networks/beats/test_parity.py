"""Our BEATs against golden outputs of the official code (tiny checkpoints in the official format).

Bounds are those the reference README suggests for a float32 re-implementation on CPU.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from datasets.fbank import fbank_features, log_mel_fbank, reduce_padding_mask
from networks.beats import load_beats

FEATURE_TOL = 1e-4
FBANK_TOL = 1e-4
FBANK_RAW_TOL = 2e-3
PROBS_TOL = 1e-5


def max_abs_diff(ours: torch.Tensor, golden: np.ndarray) -> float:
    assert tuple(ours.shape) == golden.shape
    return float((ours.double() - torch.from_numpy(golden).double()).abs().max())


@pytest.fixture(scope="module")
def golden(beats_reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(beats_reference_dir / "tiny_beats_golden.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def golden_finetuned(beats_reference_dir: Path) -> dict[str, np.ndarray]:
    with np.load(beats_reference_dir / "tiny_beats_finetuned_golden.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def model(beats_reference_dir: Path):
    return load_beats(beats_reference_dir / "tiny_beats_official_format.pt")


@pytest.fixture(scope="module")
def finetuned(beats_reference_dir: Path):
    return load_beats(beats_reference_dir / "tiny_beats_finetuned_official_format.pt")


@pytest.fixture(scope="module")
def traced(model, golden):
    """Run the masked golden batch once, recording each layer's output with forward hooks."""
    outputs: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out, name=f"layer{i}_out": outputs.__setitem__(name, out))
        for i, layer in enumerate(model.encoder.layers)
    ]
    try:
        with torch.no_grad():
            features, mask = model.extract_features(
                torch.from_numpy(golden["waveform"]), torch.from_numpy(golden["padding_mask"])
            )
    finally:
        for hook in hooks:
            hook.remove()
    return {"features": features, "features_padding_mask": mask, **outputs}


def test_fbank_matches_kaldi_golden(golden):
    wave = torch.from_numpy(golden["waveform"])
    assert max_abs_diff(log_mel_fbank(wave), golden["fbank_raw"]) < FBANK_RAW_TOL
    assert max_abs_diff(fbank_features(wave), golden["fbank"]) < FBANK_TOL
    assert max_abs_diff(fbank_features(torch.from_numpy(golden["waveform_3s"])), golden["fbank_3s"]) < FBANK_TOL


def test_fbank_padding_mask_is_exact(golden):
    mask = reduce_padding_mask(torch.from_numpy(golden["padding_mask"]), golden["fbank"].shape[1])
    np.testing.assert_array_equal(mask.numpy(), golden["fbank_padding_mask"])


def test_padding_mask_keeps_the_official_grouping_rule():
    # 10 steps into 3: the last step is dropped, groups are [0..2], [3..5], [6..8].
    mask = torch.tensor([[False, False, True, True, True, True, False, True, True, True]])
    assert reduce_padding_mask(mask, 3).tolist() == [[False, True, False]]


def test_patch_embedding_and_input_projection(model, golden):
    fbank = torch.from_numpy(golden["fbank"])
    with torch.no_grad():
        conv = model.patch_embedding(fbank.unsqueeze(1))
        tokens = model.layer_norm(conv.flatten(2).transpose(1, 2))
        projected = model.post_extract_proj(tokens)
    assert max_abs_diff(conv, golden["patch_conv_out"]) < FEATURE_TOL
    assert max_abs_diff(tokens, golden["patch_tokens_ln"]) < FEATURE_TOL
    assert max_abs_diff(projected, golden["patch_tokens_proj"]) < FEATURE_TOL


def test_positional_conv_and_encoder_input(model, golden):
    projected = torch.from_numpy(golden["patch_tokens_proj"])
    token_mask = torch.from_numpy(golden["features_padding_mask"])
    zeroed = projected.masked_fill(token_mask.unsqueeze(-1), 0.0)
    with torch.no_grad():
        conv = F.gelu(model.encoder.pos_conv(zeroed.transpose(1, 2))[:, :, :-1])
        encoder_input = model.encoder.layer_norm(zeroed + conv.transpose(1, 2))
    assert max_abs_diff(conv, golden["pos_conv_out"]) < FEATURE_TOL
    assert max_abs_diff(encoder_input, golden["encoder_input_ln"]) < FEATURE_TOL


def test_relative_position_bias(model, golden):
    with torch.no_grad():
        bias = model.encoder.position_bias(496, torch.device("cpu"))
    heads = bias.shape[0]
    # The official bias is repeated per batch row (row = b * heads + h); both rows are equal.
    golden_bias = golden["position_bias"].reshape(2, heads, 496, 496)
    assert max_abs_diff(bias, golden_bias[0]) == 0.0
    assert max_abs_diff(bias, golden_bias[1]) == 0.0


def test_relative_position_bias_cache_serves_shorter_sequences(model, golden):
    with torch.no_grad():
        long = model.encoder.position_bias(496, torch.device("cpu"))
        short = model.encoder.position_bias(144, torch.device("cpu"))
    torch.testing.assert_close(short, long[:, :144, :144], rtol=0, atol=0)


def test_layer_outputs(traced, golden):
    assert max_abs_diff(traced["layer0_out"], golden["layer0_out"]) < FEATURE_TOL
    assert max_abs_diff(traced["layer1_out"], golden["layer1_out"]) < FEATURE_TOL


def test_features_with_padding_mask(traced, golden):
    # Every position, padded ones included: the official code does not zero them.
    assert max_abs_diff(traced["features"], golden["features"]) < FEATURE_TOL
    np.testing.assert_array_equal(traced["features_padding_mask"].numpy(), golden["features_padding_mask"])


def test_features_without_mask(model, golden):
    with torch.no_grad():
        features, mask = model.extract_features(torch.from_numpy(golden["waveform"][:1]))
    assert mask is None
    assert max_abs_diff(features, golden["features_nomask_10s"]) < FEATURE_TOL


def test_short_clip_drops_leftover_frames(model, golden):
    wave = torch.from_numpy(golden["waveform_3s"])
    with torch.no_grad():
        features, mask = model.extract_features(wave, torch.zeros_like(wave, dtype=torch.bool))
    assert max_abs_diff(features, golden["features_3s"]) < FEATURE_TOL
    np.testing.assert_array_equal(mask.numpy(), golden["features_padding_mask_3s"])


def test_features_from_precomputed_fbank(model, golden):
    with torch.no_grad():
        features, mask = model.encode_fbank(
            torch.from_numpy(golden["fbank"]), torch.from_numpy(golden["fbank_padding_mask"])
        )
    assert max_abs_diff(features, golden["features"]) < FEATURE_TOL
    np.testing.assert_array_equal(mask.numpy(), golden["features_padding_mask"])


def test_finetuned_probabilities(finetuned, golden_finetuned):
    wave = torch.from_numpy(golden_finetuned["waveform"])
    with torch.no_grad():
        probs, mask = finetuned.predict(wave, torch.from_numpy(golden_finetuned["padding_mask"]))
        probs_nomask, nomask = finetuned.predict(wave[:1])
        probs_allfalse, _ = finetuned.predict(wave[:1], torch.zeros_like(wave[:1], dtype=torch.bool))
    assert max_abs_diff(probs, golden_finetuned["probs"]) < PROBS_TOL
    np.testing.assert_array_equal(mask.numpy(), golden_finetuned["probs_padding_mask"])
    assert nomask is None
    assert max_abs_diff(probs_nomask, golden_finetuned["probs_nomask_10s"]) < PROBS_TOL
    assert max_abs_diff(probs_allfalse, golden_finetuned["probs_allfalse_mask_10s"]) < PROBS_TOL


def test_label_dict_is_kept(finetuned):
    assert finetuned.label_dict == {i: f"label_{i}" for i in range(10)}


def test_training_mode_matches_and_backpropagates(beats_reference_dir, golden):
    """The training path (autograd, train mode) gives the golden features and gradients everywhere."""
    model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt")
    wave = torch.from_numpy(golden["waveform"])
    # Caches filled during inference (e.g. while scoring) must not break a later training pass.
    with torch.inference_mode():
        model.extract_features(wave)
    model.train()
    # Layer drop is random by design; switch it off so train mode is deterministic here.
    model.cfg.encoder_layerdrop = 0.0
    features, mask = model.extract_features(wave, torch.from_numpy(golden["padding_mask"]))
    assert max_abs_diff(features.detach(), golden["features"]) < FEATURE_TOL

    valid = (~mask).unsqueeze(-1).float()
    loss = (features * valid).pow(2).sum() / valid.sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"no gradient for {name}"
        assert torch.isfinite(param.grad).all(), f"non-finite gradient for {name}"
        assert param.grad.abs().sum() > 0, f"zero gradient for {name}"


# Features under bf16 autocast against the float32 golden ones (largest value 5.96): measured 0.028
# here with five kernel settings (AVX512-BF16; oneDNN limited to AVX512_CORE, AVX2, SSE4.1; ATen's
# AVX2 kernels), so about 3.5 times that. A bf16 positional convolution gave 0.05 here, 6.9 on AMX.
AUTOCAST_FEATURE_TOL = 0.1


def test_autocast_training_step_runs(beats_reference_dir, golden):
    """Mixed precision (the GPU training path; bf16 autocast also exists on CPU) works with a mask."""
    model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt").train()
    model.cfg.encoder_layerdrop = 0.0
    wave = torch.from_numpy(golden["waveform"])
    projection_dtypes = []
    model.encoder.layers[0].fc1.register_forward_hook(lambda _m, _i, out: projection_dtypes.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features, mask = model.extract_features(wave, torch.from_numpy(golden["padding_mask"]))
    features.float().pow(2).mean().backward()
    assert projection_dtypes == [torch.bfloat16]  # the linear layers did run in bf16
    assert max_abs_diff(features.detach().float(), golden["features"]) < AUTOCAST_FEATURE_TOL
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_lora_adapters_on_the_projections_take_effect(beats_reference_dir, golden):
    """peft LoRA on q/v projections changes the output and receives gradients (fine-tuning path)."""
    from peft import LoraConfig, inject_adapter_in_model

    model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt")
    model = inject_adapter_in_model(LoraConfig(r=4, target_modules=["q_proj", "v_proj"]), model)
    wave = torch.from_numpy(golden["waveform"][:1])
    with torch.no_grad():
        before, _ = model.extract_features(wave)
    # LoRA starts as the identity (B = 0); any non-zero B must show up in the features.
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.1)
    features, _ = model.extract_features(wave)
    assert max_abs_diff(before, golden["features_nomask_10s"]) < FEATURE_TOL
    assert (features.detach() - before).abs().max() > 1e-3
    features.pow(2).mean().backward()
    lora = [param for name, param in model.named_parameters() if "lora_" in name]
    assert lora and all(param.grad is not None and param.grad.abs().sum() > 0 for param in lora)


def test_layer_drop_skips_layers_only_in_training(beats_reference_dir, golden):
    model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt")
    model.cfg.encoder_layerdrop = 1.0
    fbank = torch.from_numpy(golden["fbank"])
    frame_mask = torch.from_numpy(golden["fbank_padding_mask"])
    with torch.no_grad():
        evaluated, _ = model.encode_fbank(fbank, frame_mask)
        dropped, _ = model.train().encode_fbank(fbank, frame_mask)
    assert max_abs_diff(evaluated, golden["features"]) < FEATURE_TOL
    # Every layer skipped: what is left is the encoder input (LN after the positional conv).
    assert max_abs_diff(dropped, golden["encoder_input_ln"]) < FEATURE_TOL


def test_layer_wise_gradient_decay_scales_lower_gradients(beats_reference_dir, golden):
    fbank = torch.from_numpy(golden["fbank"][:1])

    def patch_gradient(ratio: float) -> torch.Tensor:
        model = load_beats(beats_reference_dir / "tiny_beats_official_format.pt")
        model.cfg.layer_wise_gradient_decay_ratio = ratio
        features, _ = model.encode_fbank(fbank)
        features.pow(2).mean().backward()
        return model.patch_embedding.weight.grad

    # The patch embedding sits below both layers: its gradient is scaled by ratio ** 2.
    torch.testing.assert_close(patch_gradient(0.5), 0.25 * patch_gradient(1.0), rtol=1e-4, atol=1e-9)
