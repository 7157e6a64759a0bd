"""The BEATs audio encoder (and the optional AudioSet head of fine-tuned checkpoints).

Reads: waveforms `[batch, samples]` (16 kHz, [-1, 1]) with optional sample padding masks, or
precomputed normalised fbank `[batch, frames, 128]` with frame padding masks.
Writes: frame-level (token) features `[batch, tokens, encoder_embed_dim]` with the token padding
mask, or class probabilities `[batch, classes]` for fine-tuned models.

Parameter names and shapes are those of the official BEATs state_dict, so official checkpoints
load strictly. The forward pass follows the official semantics (post-LN DeepNorm layers, gated
relative position bias shared from layer 0, weight-normed grouped positional convolution); it is
written for speed (`scaled_dot_product_attention` with the gated bias as a float mask, the bias
built once per forward as a Toeplitz copy from buckets cached per module, no 32x logit rescaling)
and stays differentiable throughout, with every sub-module called as a module so peft adapters
(LoRA) on the projections take effect.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datasets.fbank import fbank_features, reduce_padding_mask
from networks.beats.architecture import BEATsArchitecture


class _GradScale(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:  # type: ignore[override]
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.scale, None


def relative_position_buckets(relative: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5-style bidirectional bucket of relative positions `key_pos - query_pos`.

    Half of the buckets cover each sign; within a half, distances below a quarter of
    `num_buckets` get their own bucket and larger ones share log-spaced buckets up to
    `max_distance`. Computed in float32 like the official code, so bucket edges agree.

    Args:
        relative: int64 tensor of any shape holding `key_pos - query_pos`.

    Returns:
        int64 buckets, same shape as `relative`.
    """
    half = num_buckets // 2
    max_exact = half // 2
    buckets = (relative > 0).long() * half
    distance = relative.abs()
    # log(0) = -inf at distance 0 is harmless: torch.where picks the exact bucket there.
    log_ratio = torch.log(distance.float() / max_exact) / math.log(max_distance / max_exact)
    large = (max_exact + (log_ratio * (half - max_exact)).long()).clamp(max=half - 1)
    return buckets + torch.where(distance < max_exact, distance, large)


class WeightNormConv1d(nn.Module):
    """Grouped 1-D convolution with the legacy `weight_norm(dim=2)` parametrisation.

    The effective kernel is `weight_g * weight_v / ||weight_v||`, the norm taken over output and
    input channels separately for every kernel tap (the official checkpoints store `weight_g`
    with shape `[1, 1, kernel]`).
    """

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.groups = groups
        # Registration order mirrors the official key order: bias, weight_g, weight_v.
        self.bias = nn.Parameter(torch.zeros(channels))
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))

    def effective_weight(self) -> Tensor:
        """Effective kernel `[channels, channels / groups, kernel]`."""
        # The fused op behind torch's own weight_norm (legacy and parametrization): same result
        # as g * v / ||v||, with its own backward, and ~10x faster than composing it from
        # vector_norm on this [768, 48, 128] kernel.
        return torch._weight_norm(self.weight_v, self.weight_g, 2)

    def forward(self, x: Tensor) -> Tensor:
        """`[batch, channels, time]` -> `[batch, channels, time + 1 - kernel % 2]` (padding kernel // 2), float32."""
        # Always float32, also under autocast: on CPUs with AMX/AVX512-BF16, PyTorch 2.11's oneDNN
        # computes this bfloat16 grouped convolution with a long kernel (128 taps, 16 groups)
        # wrongly (errors larger than the output). It is ~5 % of the encoder's FLOPs.
        with torch.autocast(device_type=x.device.type, enabled=False):
            return F.conv1d(
                x.float(), self.effective_weight(), self.bias, padding=self.kernel_size // 2, groups=self.groups
            )


class MultiheadAttention(nn.Module):
    """Self-attention with an optional gated relative position bias (official parameter names).

    `relative_attention_bias` is created here only for the layer that owns the table (layer 0);
    later layers receive the same module so the state_dict lists it under every layer, as the
    official one does, while only one tensor exists.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float,
        gru_rel_pos: bool,
        num_buckets: int,
        own_bias: bool,
        shared_bias: nn.Embedding | None,
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.grep_a = nn.Parameter(torch.ones(1, num_heads, 1, 1))
        # Key order as in official checkpoints: the owner lists the table before k_proj, the
        # other layers after grep_linear.
        if own_bias:
            self.relative_attention_bias = nn.Embedding(num_buckets, num_heads)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
        if shared_bias is not None:
            self.relative_attention_bias = shared_bias

    def forward(self, x: Tensor, position_bias: Tensor | None, key_padding_mask: Tensor | None) -> Tensor:
        """Attend over the sequence.

        Args:
            x: `[batch, time, embed]`.
            position_bias: un-gated bias `[heads, time, time]` (from layer 0's table) or None.
            key_padding_mask: `[batch, time]` bool, True = padded key, or None.

        Returns:
            `[batch, time, embed]`.
        """
        batch, time, embed = x.shape
        # The projections are called as modules (not fused from their weights) so that adapters
        # such as LoRA wrapped around them by peft take effect.
        q = self.q_proj(x).view(batch, time, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(batch, time, self.num_heads, self.head_dim)
        v = self.v_proj(x).view(batch, time, self.num_heads, self.head_dim)

        mask = self._attention_mask(q, position_bias, key_padding_mask)
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, time, embed))

    def _gate(self, q: Tensor) -> Tensor:
        """Per-head, per-query gate `[batch, heads, time, 1]` of the relative position bias.

        From the unscaled query per head: grep_linear (-> 8), the 8 summed in two groups of 4,
        sigmoid -> (a, b), gate = a * (b * grep_a - 1) + 2. Reading q as `[batch, time, heads,
        head_dim]` keeps the small grep_linear GEMM on contiguous memory.
        """
        batch, time, heads, _ = q.shape
        gate_a, gate_b = torch.sigmoid(self.grep_linear(q).view(batch, time, heads, 2, 4).sum(-1)).unbind(-1)
        gate = gate_a * (gate_b * self.grep_a.view(1, 1, heads) - 1.0) + 2.0  # [batch, time, heads]
        return gate.transpose(1, 2).unsqueeze(-1)

    def _attention_mask(
        self, q: Tensor, position_bias: Tensor | None, key_padding_mask: Tensor | None
    ) -> Tensor | None:
        """Additive logit mask `[batch or 1, heads or 1, time, time]`: gated bias plus -inf on padded keys.

        Args:
            q: unscaled queries `[batch, time, heads, head_dim]`; the mask takes their dtype
                (bf16/fp16 under autocast), as SDPA requires.
        """
        dtype = q.dtype
        padding = None
        if key_padding_mask is not None:
            padding = torch.zeros(key_padding_mask.shape, dtype=dtype, device=q.device)
            padding = padding.masked_fill(key_padding_mask, float("-inf"))[:, None, None, :]
        if position_bias is None:
            return padding
        position_bias = position_bias.to(dtype)
        if self.gru_rel_pos:
            gate = self._gate(q).to(dtype)
            if padding is None:
                return gate * position_bias
            return torch.addcmul(padding, gate, position_bias)
        return position_bias.unsqueeze(0) if padding is None else padding + position_bias


class EncoderLayer(nn.Module):
    """Post-LN transformer layer with DeepNorm residual scaling `LN(alpha * x + f(x))`."""

    def __init__(self, cfg: BEATsArchitecture, own_bias: bool, shared_bias: nn.Embedding | None) -> None:
        super().__init__()
        embed = cfg.encoder_embed_dim
        self.alpha = (2 * cfg.encoder_layers) ** 0.25 if cfg.deep_norm else 1.0
        self.self_attn = MultiheadAttention(
            embed,
            cfg.encoder_attention_heads,
            cfg.attention_dropout,
            cfg.gru_rel_pos,
            cfg.num_buckets,
            own_bias,
            shared_bias,
        )
        self.dropout1 = nn.Dropout(cfg.dropout)
        self.dropout2 = nn.Dropout(cfg.activation_dropout)
        self.dropout3 = nn.Dropout(cfg.dropout)
        self.self_attn_layer_norm = nn.LayerNorm(embed)
        self.fc1 = nn.Linear(embed, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, embed)
        self.final_layer_norm = nn.LayerNorm(embed)

    def forward(self, x: Tensor, position_bias: Tensor | None, key_padding_mask: Tensor | None) -> Tensor:
        """`[batch, time, embed]` -> `[batch, time, embed]`."""
        # torch.add(f, x, alpha=a) = a * x + f in one kernel.
        attended = self.dropout1(self.self_attn(x, position_bias, key_padding_mask))
        x = self.self_attn_layer_norm(torch.add(attended, x, alpha=self.alpha))
        hidden = self.dropout2(F.gelu(self.fc1(x)))
        return self.final_layer_norm(torch.add(self.dropout3(self.fc2(hidden)), x, alpha=self.alpha))


class TransformerEncoder(nn.Module):
    """Positional convolution, input LayerNorm and the stack of post-LN layers.

    Holds only architectural constants; the training-time settings (layer drop, gradient decay)
    are passed to `forward` by `BEATs`, so its `cfg` stays the one place to change them.
    """

    def __init__(self, cfg: BEATsArchitecture) -> None:
        super().__init__()
        self.conv_pos = cfg.conv_pos
        self.relative_position_embedding = cfg.relative_position_embedding
        self.num_buckets = cfg.num_buckets
        self.max_distance = cfg.max_distance
        self.dropout = nn.Dropout(cfg.dropout)
        # A Sequential only so that the official key prefix `pos_conv.0.` comes out.
        self.pos_conv = nn.Sequential(WeightNormConv1d(cfg.encoder_embed_dim, cfg.conv_pos, cfg.conv_pos_groups))
        layers = []
        for i in range(cfg.encoder_layers):
            own = cfg.relative_position_embedding and i == 0
            shared = layers[0].self_attn.relative_attention_bias if cfg.relative_position_embedding and i > 0 else None
            layers.append(EncoderLayer(cfg, own_bias=own, shared_bias=shared))
        self.layers = nn.ModuleList(layers)
        self.layer_norm = nn.LayerNorm(cfg.encoder_embed_dim)
        # Buckets of the relative distances -(L-1) .. L-1 for the longest length L seen so far,
        # per device; any shorter length uses a centred slice. Not part of the state_dict.
        self._bucket_cache: dict[torch.device, Tensor] = {}

    def _distance_buckets(self, length: int, device: torch.device) -> Tensor:
        """Buckets `[2 * length - 1]` of the distances `-(length - 1) .. length - 1`."""
        cached = self._bucket_cache.get(device)
        if cached is None or cached.shape[0] < 2 * length - 1:
            # A tensor made under inference_mode could not enter a later training pass.
            with torch.inference_mode(False):
                distances = torch.arange(-(length - 1), length, dtype=torch.long, device=device)
                cached = relative_position_buckets(distances, self.num_buckets, self.max_distance)
            self._bucket_cache[device] = cached
        centre = cached.shape[0] // 2
        return cached[centre - (length - 1) : centre + length]

    def position_bias(self, length: int, device: torch.device) -> Tensor | None:
        """Un-gated relative position bias `[heads, length, length]` (query, key) from layer 0's table, or None."""
        if not self.relative_position_embedding:
            return None
        table = self.layers[0].self_attn.relative_attention_bias.weight  # [num_buckets, heads]
        per_distance = table.t()[:, self._distance_buckets(length, device)]  # [heads, 2L - 1]
        # The bias is Toeplitz: bias[h, i, j] = per_distance[h, j - i + L - 1]. Unfolding the
        # reversed vector gives rows of i + j; the second flip turns them into j - i and makes
        # one contiguous copy, much cheaper than gathering L^2 bucket indices.
        return per_distance.flip(-1).unfold(-1, length, 1).flip(-1)

    def forward(
        self, x: Tensor, padding_mask: Tensor | None, layerdrop: float = 0.0, gradient_decay_ratio: float = 1.0
    ) -> Tensor:
        """Encode tokens.

        Args:
            x: `[batch, tokens, embed]` projected patch tokens.
            padding_mask: `[batch, tokens]` bool, True = padded, or None.
            layerdrop: probability of skipping each layer in training mode.
            gradient_decay_ratio: gradient scale at every layer input (identity forward).

        Returns:
            `[batch, tokens, embed]`; padded positions hold ordinary (not zeroed) values.
        """
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        conv = self.pos_conv(x.transpose(1, 2))
        if self.conv_pos % 2 == 0:
            # An even kernel with padding k/2 yields one extra step; drop it ("same" padding).
            conv = conv[:, :, :-1]
        x = x + F.gelu(conv).transpose(1, 2)
        x = self.dropout(self.layer_norm(x))

        position_bias = self.position_bias(x.shape[1], x.device)
        for layer in self.layers:
            # Layer-wise gradient decay: the gradient is scaled at every layer input, so the
            # lower a layer, the smaller its gradient (ratio 0.6 in the official AS2M cfg).
            if gradient_decay_ratio != 1.0:
                x = _GradScale.apply(x, gradient_decay_ratio)
            if self.training and layerdrop > 0 and torch.rand(()) < layerdrop:
                continue
            x = layer(x, position_bias, padding_mask)
        return x


class BEATs(nn.Module):
    """BEATs encoder with the official module layout (and `predictor` for fine-tuned configs)."""

    def __init__(self, cfg: BEATsArchitecture) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        # Registration order mirrors the official state_dict order.
        if cfg.embed_dim != cfg.encoder_embed_dim:
            self.post_extract_proj = nn.Linear(cfg.embed_dim, cfg.encoder_embed_dim)
        else:
            self.post_extract_proj = None
        patch = cfg.input_patch_size
        self.patch_embedding = nn.Conv2d(1, cfg.embed_dim, kernel_size=patch, stride=patch, bias=cfg.conv_bias)
        self.dropout_input = nn.Dropout(cfg.dropout_input)
        self.encoder = TransformerEncoder(cfg)
        self.layer_norm = nn.LayerNorm(cfg.embed_dim)
        if cfg.finetuned_model:
            self.predictor_dropout = nn.Dropout(cfg.predictor_dropout)
            self.predictor = nn.Linear(cfg.encoder_embed_dim, cfg.predictor_class)
        else:
            self.predictor = None
        # Class names of the predictor outputs, as stored in fine-tuned checkpoints.
        self.label_dict: dict[Any, Any] | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Random initialisation for training from scratch (DeepNorm scaling when enabled).

        Loading a checkpoint overwrites all of this.
        """
        cfg = self.cfg
        beta = (8 * cfg.encoder_layers) ** -0.25 if cfg.deep_norm else 1.0
        for layer in self.encoder.layers:
            attn = layer.self_attn
            # DeepNorm: down-scale the value/output/FFN projections, keep query/key at gain 1.
            for linear, gain in (
                (attn.q_proj, 1.0),
                (attn.k_proj, 1.0),
                (attn.v_proj, beta),
                (attn.out_proj, beta),
                (layer.fc1, beta),
                (layer.fc2, beta),
            ):
                nn.init.xavier_normal_(linear.weight, gain=gain)
                nn.init.zeros_(linear.bias)
        conv = self.encoder.pos_conv[0]
        std = math.sqrt(4 * (1.0 - cfg.dropout) / (cfg.conv_pos * cfg.encoder_embed_dim))
        nn.init.normal_(conv.weight_v, mean=0.0, std=std)
        nn.init.zeros_(conv.bias)
        with torch.no_grad():
            conv.weight_g.copy_(torch.linalg.vector_norm(conv.weight_v, dim=(0, 1), keepdim=True))

    def encode_fbank(self, fbank: Tensor, frame_padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Encode normalised fbank into token features.

        Args:
            fbank: `[batch, frames, 128]` normalised log-mel (see `preprocess.fbank_features`).
            frame_padding_mask: `[batch, frames]` bool, True = padded frame, or None.

        Returns:
            features `[batch, tokens, encoder_embed_dim]` with tokens = (frames // 16) * 8 in
            time-major order, and the token padding mask `[batch, tokens]` (None without input mask).
        """
        x = self.patch_embedding(fbank.unsqueeze(1))  # [batch, embed_dim, frames // p, 128 // p]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        token_mask = None
        if frame_padding_mask is not None:
            token_mask = reduce_padding_mask(frame_padding_mask, x.shape[1])
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        x = self.encoder(
            self.dropout_input(x),
            token_mask,
            layerdrop=self.cfg.encoder_layerdrop,
            gradient_decay_ratio=self.cfg.layer_wise_gradient_decay_ratio,
        )
        return x, token_mask

    def extract_features(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Token features of a batch of clips, ready for pooling by a classifier.

        Unlike the official `extract_features`, this always returns features, also for
        fine-tuned models; use `predict` for their class probabilities.

        Args:
            wave: `[batch, samples]` float audio in [-1, 1] at 16 kHz.
            padding_mask: `[batch, samples]` bool, True = padded sample, or None.

        Returns:
            features `[batch, tokens, encoder_embed_dim]` (496 tokens for 10 s) and the token
            padding mask `[batch, tokens]` bool, or None when no mask was given.
        """
        # The fbank is kept in float32 even under autocast: half-precision log-mel loses detail.
        with torch.autocast(device_type=wave.device.type, enabled=False):
            fbank = fbank_features(wave.float())
        frame_mask = None
        if padding_mask is not None:
            frame_mask = reduce_padding_mask(padding_mask, fbank.shape[1])
        return self.encode_fbank(fbank, frame_mask)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Same as `extract_features`."""
        return self.extract_features(wave, padding_mask)

    def classify_features(self, features: Tensor, token_padding_mask: Tensor | None = None) -> Tensor:
        """Fine-tuned head: per-token logits averaged over valid tokens, then sigmoid.

        Args:
            features: `[batch, tokens, encoder_embed_dim]`.
            token_padding_mask: `[batch, tokens]` bool or None.

        Returns:
            `[batch, predictor_class]` probabilities.
        """
        if self.predictor is None:
            raise RuntimeError("this BEATs model has no predictor head (cfg.finetuned_model is False)")
        logits = self.predictor(self.predictor_dropout(features))
        # As in the official head: the masked average is used only when some token in the batch
        # is padded; otherwise a plain mean (numerically slightly different).
        if token_padding_mask is not None and bool(token_padding_mask.any()):
            logits = logits.masked_fill(token_padding_mask.unsqueeze(-1), 0.0).sum(dim=1)
            logits = logits / (~token_padding_mask).sum(dim=1, keepdim=True)
        else:
            logits = logits.mean(dim=1)
        return torch.sigmoid(logits)

    def predict(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Class probabilities of a fine-tuned model (the official fine-tuned `extract_features` output).

        Returns:
            probabilities `[batch, predictor_class]` and the token padding mask (or None).
        """
        features, token_mask = self.extract_features(wave, padding_mask)
        return self.classify_features(features, token_mask), token_mask
