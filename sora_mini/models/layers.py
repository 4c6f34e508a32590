"""Shared transformer layers: timestep / label embedders, adaLN-Zero blocks, cross-attention, final layer.

Shapes: tokens x [S, L, D]; conditioning vectors either one per row ``c`` [S, D] or a small table of
rows ``c`` [K, D] plus a per-token row index [S, L] (``Modulation``), so packed sequences (several
examples per row, NaViT) and per-token timesteps (Open-Sora 1.x, LTX) cost one adaLN matmul per
distinct (example, timestep), not one per token.
Peebles & Xie 2023, "Scalable Diffusion Models with Transformers" (DiT, arXiv 2212.09748).
Parameter names follow facebookresearch/DiT ``models.py`` so official checkpoints load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Attention as TimmAttention
from timm.models.vision_transformer import Mlp
from torch import nn


# ----------------------------------------------------------------------------------------------
# Embedders
# ----------------------------------------------------------------------------------------------
def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of (possibly fractional) timesteps on DiT's 0..999 scale: [cos | sin].

    Shapes: t [K] -> [K, dim] float32. A flow-matching t in [0, 1] must be multiplied by 1000 first
    (``sora_mini.diffusion`` does it for a model that declares ``timestep_range = (0, 1000)``).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # [K, half]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # cos first, as DiT
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """Scalar timesteps -> vectors: sinusoids, then Linear-SiLU-Linear (keys ``mlp.0``, ``mlp.2``).

    Shapes: t [K] (0..999 scale) -> [K, D].
    """

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        freq = timestep_embedding(t, self.frequency_embedding_size)  # [K, 256]
        return self.mlp(freq.to(self.mlp[0].weight.dtype))  # [K, D]


class LabelEmbedder(nn.Module):
    """Class labels -> vectors, with label dropout to a null class (index ``num_classes``) for CFG.

    Shapes: labels [B] long -> [B, D].
    """

    def __init__(self, num_classes: int, hidden_size: int, dropout_prob: float):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + int(dropout_prob > 0), hidden_size)
        self.num_classes, self.dropout_prob = num_classes, dropout_prob

    def token_drop(self, labels: torch.Tensor, force_drop_ids: torch.Tensor | None = None) -> torch.Tensor:
        if force_drop_ids is None:
            drop = torch.rand(labels.shape[0], device=labels.device) < self.dropout_prob
        else:
            drop = force_drop_ids == 1
        return torch.where(drop, torch.full_like(labels, self.num_classes), labels)

    def forward(self, labels: torch.Tensor, train: bool, force_drop_ids: torch.Tensor | None = None):
        if (train and self.dropout_prob > 0) or force_drop_ids is not None:
            labels = self.token_drop(labels, force_drop_ids)
        return self.embedding_table(labels)


# ----------------------------------------------------------------------------------------------
# Modulation: which conditioning row each token reads
# ----------------------------------------------------------------------------------------------
@dataclass
class Modulation:
    """Conditioning rows ``c`` [K, D] and, optionally, the row of every token ``index`` [S, L].

    Without an index there is one row per sequence (K == S), broadcast over its tokens (DiT).
    """

    c: torch.Tensor
    index: torch.Tensor | None = None

    def per_token(self, values: torch.Tensor) -> torch.Tensor:
        """Rows of ``values`` [K, M] -> [S, L, M] (with an index) or [S, 1, M] (without)."""
        if self.index is None:
            return values.unsqueeze(1)
        # index_select, not values[index]: its backward is an index_add, measured 7x faster on the CPU
        # than the accumulating index_put of advanced indexing ([40, 1536] rows to 10 x 512 tokens)
        return values.index_select(0, self.index.reshape(-1)).view(*self.index.shape, values.shape[-1])


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: ``x * (1 + scale) + shift``; shapes x [S, L, D], shift/scale [S, L or 1, D]."""
    return x * (1 + scale) + shift


def dit_mlp(hidden_size: int, mlp_ratio: float) -> Mlp:
    """timm's Mlp with tanh-approximate GELU, as DiT (keys ``fc1``, ``fc2``)."""
    return Mlp(hidden_size, int(hidden_size * mlp_ratio), act_layer=lambda: nn.GELU(approximate="tanh"), drop=0)


# ----------------------------------------------------------------------------------------------
# Attention
# ----------------------------------------------------------------------------------------------
def dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v under a boolean mask (True = attend): the one attention kernel that
    every backbone block calls (self-, cross- and joint attention; packed rows get their mask from
    ``sora_mini.models.attention.full_attention``).

    Shapes: q [..., Lq, Dh], k, v [..., Lk, Dh], mask broadcastable to [..., Lq, Lk] (bool, or an
    additive float bias as SDPA takes) -> [..., Lq, Dh].
    On a CPU in bf16 the plain matmul-softmax-matmul (timm's non-fused path) is used: measured 1.5-3x
    faster there than SDPA's flash kernel, forward + backward, at these head sizes (see
    benchmarks/bench_backbone.py). The mask is added as a 0 / -inf bias rather than applied with
    ``masked_fill``: the same scores and gradients (the softmax's gradient is 0 where its output is),
    but the backward pass skips a masked copy of the scores (fwd + bwd of a packed [10, 4, 512, 512]
    attention, bf16, 2 threads: 94-117 ms -> 33 ms, as without a mask). Elsewhere ``F.scaled_dot_product_attention``.
    """
    if q.device.type == "cpu" and q.dtype in (torch.bfloat16, torch.float16):
        scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)  # [..., Lq, Lk]
        if mask is not None:
            if mask.dtype == torch.bool:
                mask = torch.zeros(mask.shape, dtype=scores.dtype, device=scores.device).masked_fill_(
                    ~mask, float("-inf"))
            scores = scores.add_(mask)  # in place: the matmul's backward does not read its output
        return scores.softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


class Attention(TimmAttention):
    """timm's ``Attention`` (same parameters: ``qkv``, ``proj``), with ``dot_product_attention`` inside.

    Shapes: x [S, L, D], attn_mask [S, 1, L, L] bool or None -> [S, L, D].
    """

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False):
        if is_causal or self.gate is not None:
            return super().forward(x, attn_mask, is_causal)
        B, N, _ = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)  # [B, H, N, Dh]
        out = dot_product_attention(q, k, v, attn_mask)
        return self.proj(self.norm(out.transpose(1, 2).reshape(B, N, self.attn_dim)))


class CrossAttention(nn.Module):
    """Multi-head attention from tokens to a context (text tokens or clean condition-frame tokens).

    Shapes: x [S, L, D], context [S, K, D], mask [S, 1, L, K] bool (True = attend) -> [S, L, D].
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden size {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.num_heads
        q = self.q(x).unflatten(-1, (h, -1)).transpose(1, 2)  # [S, H, L, Dh]
        k, v = self.kv(context).unflatten(-1, (2, h, -1)).permute(2, 0, 3, 1, 4)  # 2 x [S, H, K, Dh]
        out = dot_product_attention(q, k, v, mask)  # [S, H, L, Dh]
        return self.proj(out.transpose(1, 2).flatten(2))  # [S, L, D]


@dataclass
class Context:
    """What cross-attention reads: tokens [S, K, D], a mask [S, 1, L, K] or None, and ``keep``
    [S, L, 1] (0 for tokens whose example has no context, so their cross-attention adds nothing)."""

    tokens: torch.Tensor
    mask: torch.Tensor | None = None
    keep: torch.Tensor | None = None


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------
class DiTBlock(nn.Module):
    """adaLN-Zero transformer block: self-attention (+ optional cross-attention) and MLP.

    Shapes: x [S, L, D], mod: Modulation with c [K, D] -> [S, L, D]. ``attend(attn, x)`` runs
    the self-attention on the right groups of tokens (full, per frame, per position; see
    ``sora_mini.models.attention``). With gates at zero (the init) the block is the identity.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, cross_attention: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        if cross_attention:  # PixArt-alpha / Open-Sora placement: after self-attention, not modulated
            self.norm_cross = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
            self.cross_attn = CrossAttention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = dit_mlp(hidden_size, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def forward(self, x: torch.Tensor, mod: Modulation, attend=None, context: Context | None = None):
        params = mod.per_token(self.adaLN_modulation(mod.c))  # [S, L|1, 6D]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = params.chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa * (self.attn(h) if attend is None else attend(self.attn, h))
        if context is not None and hasattr(self, "cross_attn"):
            out = self.cross_attn(self.norm_cross(x), context.tokens, context.mask)
            x = x + (out if context.keep is None else out * context.keep)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a linear map back to patch values.

    Shapes: x [S, L, D] -> [S, L, out_dim] with out_dim = patch volume * out channels.
    """

    def __init__(self, hidden_size: int, out_dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, out_dim, bias=True)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size, bias=True))

    def forward(self, x: torch.Tensor, mod: Modulation) -> torch.Tensor:
        shift, scale = mod.per_token(self.adaLN_modulation(mod.c)).chunk(2, dim=-1)  # shift first, as DiT
        return self.linear(modulate(self.norm_final(x), shift, scale))


def init_dit_weights(model: nn.Module) -> None:
    """DiT's init: xavier Linear, N(0, .02) embedders, and adaLN-Zero (every modulation and the
    output layer at zero, so each block starts as the identity and the model outputs exactly 0)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in model.modules():
        if isinstance(m, TimestepEmbedder):
            nn.init.normal_(m.mlp[0].weight, std=0.02)
            nn.init.normal_(m.mlp[2].weight, std=0.02)
        elif isinstance(m, LabelEmbedder):
            nn.init.normal_(m.embedding_table.weight, std=0.02)
        elif isinstance(m, (DiTBlock, FinalLayer)) or hasattr(m, "adaLN_modulation"):
            nn.init.zeros_(m.adaLN_modulation[-1].weight)
            nn.init.zeros_(m.adaLN_modulation[-1].bias)
        if isinstance(m, FinalLayer):
            nn.init.zeros_(m.linear.weight)
            nn.init.zeros_(m.linear.bias)
