"""Backbones: the image DiT (official names), the video DiT and U-ViT, and their shared layers.

Every backbone is built from a frozen config and follows ``sora_mini.pretrained``'s convention:
``Model(config)`` (or ``Model(**fields)``, = ``dataclasses.replace(Config(), **fields)``),
``model.config`` the dataclass, ``model.save_pretrained(dir)`` / ``Model.from_pretrained(dir, device=)``.
Each declares ``timestep_range = (0, 1000)`` (DiT's scale) and refuses t outside it; pass the model
itself to ``sora_mini.diffusion`` (training loss and ``sample``), which converts its objective's t.

API
---
DiT(DiTConfig(input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28, num_heads=16,
              mlp_ratio=4.0, class_dropout_prob=0.1, num_classes=1000, learn_sigma=True))
    ``(x [B, C, H, W], t [B], y [B]) -> [B, C_out, H, W]``; ``forward_packed(packed, t, y)``.
    ``DiT_models["DiT-S/2"](input_size=32)`` / ``dit(name, **fields)``: the official sizes; state
    dicts load official checkpoints with ``strict=True``.
VideoDiT(VideoDiTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=384, depth=12, num_heads=6,
                        mlp_ratio=4.0, attention="full", frame_cond="none", text_cond="none",
                        text_dim=None, learn_sigma=False))
    attention: "full" | "factorized"; frame_cond (default "none"): one of FRAME_CONDITIONING =
    "none", "adaln", "cross_attn", "token_concat", "in_place", "channel_concat"; text_cond
    (default "none"): one of TEXT_CONDITIONING = "none", "cross_attn", "joint" (needs text_dim).
    ``(x [B, C, T, H, W], t [B] or [B, T], cond=, cond_frames=, text=, text_mask=) -> like x``;
    ``forward_packed(packed, t [B] or [S, L], x=, cond=, cond_given=, text=, text_mask=) -> [S, L, P]``.
    ``video_dit("VideoDiT-S/2", **fields)``; ``build_video_dit(cfg, in_channels, **overrides)`` from a scale.
UViT(UViTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=512, depth=12, num_heads=8,
                num_classes=0, text_dim=None, max_text_tokens=32, frame_cond="none" | "token_concat"))
    same call pattern (time, label and caption as tokens).
pack_like(packed, latents) -> [S, L, P] clean tokens; given_tokens(packed, cond_frames) -> [S, L]
full_attention(segment_ids [S, L] | None) -> the attention plan of packed rows (see attention.py);
    attention_flops(tokens_per_frame, frames, hidden, attention)
layers: TimestepEmbedder, LabelEmbedder, DiTBlock, FinalLayer, dot_product_attention (the one
    attention kernel every block calls)
The frame-conditioning ablation of notebook 04 lives in ``sora_mini.studies.frame_conditioning``.
"""

from sora_mini.models.attention import ATTENTION_TYPES, attention_flops, full_attention
from sora_mini.models.conditioning import (
    FRAME_CONDITIONING,
    TEXT_CONDITIONING,
    given_tokens,
    pack_like,
)
from sora_mini.models.configs import DiTConfig, UViTConfig, VideoDiTConfig
from sora_mini.models.dit import DIT_SIZES, DiT, DiT_models, dit
from sora_mini.models.layers import (
    DiTBlock,
    FinalLayer,
    LabelEmbedder,
    TimestepEmbedder,
    dot_product_attention,
    timestep_embedding,
)
from sora_mini.models.uvit import UViT
from sora_mini.models.video_dit import TokenBatch, VideoDiT

VIDEO_DIT_MODELS = {f"VideoDiT-{s}/{p}": (s, p) for s in DIT_SIZES for p in (2, 4, 8)}


def video_dit(name: str = "VideoDiT-S/2", **fields) -> VideoDiT:
    """A named size (DiT's depth / width / heads; patch (1, p, p)), e.g. ``video_dit("VideoDiT-S/2",
    in_channels=4, attention="factorized")``; ``fields`` replace any field of that config."""
    if name not in VIDEO_DIT_MODELS:
        raise ValueError(f"unknown video DiT {name!r}; allowed: {', '.join(VIDEO_DIT_MODELS)}")
    size, p = VIDEO_DIT_MODELS[name]
    depth, hidden, heads = DIT_SIZES[size]
    return VideoDiT(VideoDiTConfig(patch_size=(1, p, p), hidden_size=hidden, depth=depth, num_heads=heads), **fields)


def build_video_dit(cfg, in_channels: int | None = None, **overrides) -> VideoDiT:
    """The video DiT of a scale preset (``get_config(scale)``): sizes from ``cfg.model``, patch from
    ``cfg.patches``, channels from ``cfg.compression`` unless given; ``overrides`` win."""
    m = cfg.model
    kw = {"in_channels": in_channels or cfg.compression.latent_channels, "patch_size": cfg.patches.patch_size,
          "hidden_size": m.hidden_size, "depth": m.depth, "num_heads": m.num_heads, "mlp_ratio": m.mlp_ratio,
          "attention": m.attention, "frame_cond": m.frame_cond, "text_cond": m.text_cond, "text_dim": m.text_dim}
    kw.update(overrides)
    if kw["text_cond"] == "none":
        kw["text_dim"] = None
    return VideoDiT(VideoDiTConfig(**kw))


__all__ = [
    "ATTENTION_TYPES",
    "DIT_SIZES",
    "FRAME_CONDITIONING",
    "TEXT_CONDITIONING",
    "VIDEO_DIT_MODELS",
    "DiT",
    "DiTBlock",
    "DiTConfig",
    "DiT_models",
    "FinalLayer",
    "LabelEmbedder",
    "TimestepEmbedder",
    "TokenBatch",
    "UViT",
    "UViTConfig",
    "VideoDiT",
    "VideoDiTConfig",
    "attention_flops",
    "build_video_dit",
    "dit",
    "dot_product_attention",
    "full_attention",
    "given_tokens",
    "pack_like",
    "timestep_embedding",
    "video_dit",
]
