"""Backbones: the image DiT (official names), the video DiT and U-ViT, and their shared layers.

API
---
DiT(input_size=32, patch_size=2, in_channels=4, hidden_size=1152, depth=28, num_heads=16, ...)
    ``(x [B, C, H, W], t [B], y [B]) -> [B, C_out, H, W]``; ``forward_packed(packed, t, y)``.
    ``DiT_models["DiT-S/2"](input_size=32)`` / ``dit(name, **kw)``: the official sizes; state dicts
    load official checkpoints with ``strict=True``.
VideoDiT(in_channels, patch_size=(1, 2, 2), hidden_size, depth, num_heads, mlp_ratio=4,
         attention="full"|"factorized", frame_cond=FRAME_CONDITIONING, text_cond=TEXT_CONDITIONING,
         text_dim=None, learn_sigma=False)
    ``(x [B, C, T, H, W], t [B] or [B, T], cond=, cond_frames=, text=, text_mask=) -> like x``;
    ``forward_packed(packed, t [B] or [S, L], x=, cond=, cond_given=, text=, text_mask=) -> [S, L, P]``.
    ``video_dit("VideoDiT-S/2", **kw)``; ``build_video_dit(cfg, in_channels, **overrides)`` from a scale.
UViT(in_channels, patch_size, hidden_size, depth, num_heads, num_classes=0, text_dim=None,
     frame_cond="none"|"token_concat")  same call pattern (time, label and caption as tokens).
pack_like(packed, latents) -> [S, L, P] clean tokens; given_tokens(packed, cond_frames) -> [S, L]
ablation.load_or_run_ablation(cfg, run) -> results (the frame-conditioning ablation of notebook 04,
    cached in run/ablation_conditioning.json); ablation.run_ablation(AblationConfig(...));
    ablation.summarize(results) -> one row per way (mean and std over seeds)
Timesteps are on DiT's 0..999 scale everywhere: multiply flow-matching t in [0, 1] by 1000
(``sora_mini.diffusion`` does this with ``objective.backbone_fn(model)``).
"""

from sora_mini.models.attention import ATTENTION_TYPES, attention_flops
from sora_mini.models.conditioning import (
    FRAME_CONDITIONING,
    TEXT_CONDITIONING,
    given_tokens,
    pack_like,
)
from sora_mini.models.dit import DIT_SIZES, DiT, DiT_models, dit
from sora_mini.models.layers import (
    DiTBlock,
    FinalLayer,
    LabelEmbedder,
    TimestepEmbedder,
    timestep_embedding,
)
from sora_mini.models.uvit import UViT
from sora_mini.models.video_dit import VideoDiT

VIDEO_DIT_MODELS = {f"VideoDiT-{s}/{p}": (s, p) for s in DIT_SIZES for p in (2, 4, 8)}


def video_dit(name: str = "VideoDiT-S/2", **kwargs) -> VideoDiT:
    """A named size (DiT's depth / width / heads; patch (1, p, p)), e.g. ``video_dit("VideoDiT-S/2",
    in_channels=4, attention="factorized")``."""
    if name not in VIDEO_DIT_MODELS:
        raise ValueError(f"unknown video DiT {name!r}; allowed: {', '.join(VIDEO_DIT_MODELS)}")
    size, p = VIDEO_DIT_MODELS[name]
    depth, hidden, heads = DIT_SIZES[size]
    kwargs.setdefault("patch_size", (1, p, p))
    return VideoDiT(hidden_size=hidden, depth=depth, num_heads=heads, **kwargs)


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
    return VideoDiT(**kw)


__all__ = [
    "ATTENTION_TYPES",
    "DIT_SIZES",
    "FRAME_CONDITIONING",
    "TEXT_CONDITIONING",
    "VIDEO_DIT_MODELS",
    "DiT",
    "DiTBlock",
    "DiT_models",
    "FinalLayer",
    "LabelEmbedder",
    "TimestepEmbedder",
    "UViT",
    "VideoDiT",
    "attention_flops",
    "build_video_dit",
    "dit",
    "given_tokens",
    "pack_like",
    "timestep_embedding",
    "video_dit",
]
