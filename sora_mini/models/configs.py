"""What every backbone is built from: a frozen config dataclass, checked when it is built.

``DiT(DiTConfig(...))``, ``VideoDiT(VideoDiTConfig(...))``, ``UViT(UViTConfig(...))``; the keyword
form ``VideoDiT(hidden_size=64, ...)`` is ``dataclasses.replace(VideoDiTConfig(), ...)`` (and
``VideoDiT(config, depth=4)`` replaces fields of ``config``). ``model.config`` is the dataclass;
``model.save_pretrained(dir)`` writes it to ``config.json`` (``sora_mini.pretrained``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sora_mini.models.attention import ATTENTION_TYPES
from sora_mini.models.conditioning import FRAME_CONDITIONING, TEXT_CONDITIONING, check_choice

UVIT_FRAME_CONDITIONING = ("none", "token_concat")


def resolve_config(cls: type, config, fields: dict):
    """``config`` (default ``cls()``) with ``fields`` replaced; clear errors for a wrong type or name."""
    if config is None:
        config = cls()
    elif not isinstance(config, cls):
        raise TypeError(f"config must be a {cls.__name__}, got {type(config).__name__}; pass the fields as "
                        f"keywords instead, e.g. {cls.__name__.removesuffix('Config')}(hidden_size=64)")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return dataclasses.replace(config, **fields) if fields else config


def _patch(value, n: int) -> tuple[int, ...]:
    patch = tuple(int(p) for p in value)
    if len(patch) != n or min(patch) < 1:
        raise ValueError(f"patch_size must be {n} positive ints (pt, ph, pw), got {value!r}")
    return patch


def _check_width(hidden_size: int, num_heads: int) -> None:
    if hidden_size % 16 or hidden_size % num_heads:
        raise ValueError(f"hidden_size {hidden_size} must be a multiple of 16 (3D sin-cos positions) and of "
                         f"num_heads {num_heads}; try {max(16, hidden_size // 16 * 16)}")


@dataclass(frozen=True)
class DiTConfig:
    """The image DiT (defaults: DiT-XL/2 at 256 px, latent 32x32x4, ImageNet's 1000 classes)."""

    input_size: int = 32
    patch_size: int = 2
    in_channels: int = 4
    hidden_size: int = 1152
    depth: int = 28
    num_heads: int = 16
    mlp_ratio: float = 4.0
    class_dropout_prob: float = 0.1
    num_classes: int = 1000
    learn_sigma: bool = True

    def __post_init__(self):
        if self.input_size % self.patch_size:
            raise ValueError(f"input_size {self.input_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")


@dataclass(frozen=True)
class VideoDiTConfig:
    """The video DiT. ``attention``: "full" | "factorized"; ``frame_cond`` (default "none"): one of
    "none", "adaln", "cross_attn", "token_concat", "in_place", "channel_concat"; ``text_cond``
    (default "none"): "none" | "cross_attn" | "joint", with ``text_dim`` the caption width."""

    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 384
    depth: int = 12
    num_heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "full"
    frame_cond: str = "none"
    text_cond: str = "none"
    text_dim: int | None = None
    learn_sigma: bool = False

    def __post_init__(self):
        object.__setattr__(self, "patch_size", _patch(self.patch_size, 3))
        check_choice("attention", self.attention, ATTENTION_TYPES)
        check_choice("frame_cond", self.frame_cond, FRAME_CONDITIONING)
        check_choice("text_cond", self.text_cond, TEXT_CONDITIONING)
        _check_width(self.hidden_size, self.num_heads)
        if self.text_cond != "none" and not self.text_dim:
            raise ValueError(f"text_cond={self.text_cond!r} needs text_dim (the width of the caption embeddings)")
        if self.text_cond == "joint" and self.attention != "full":
            raise ValueError("text_cond='joint' (MMDiT) needs attention='full', as SD3 / Open-Sora 2.0; "
                             "with factorized attention use text_cond='cross_attn'")
        if self.text_cond == "joint" and self.frame_cond == "cross_attn":
            raise ValueError("frame_cond='cross_attn' needs DiT blocks with cross-attention: use text_cond "
                             "'cross_attn' or 'none' with it, or another frame_cond with text_cond='joint'")


@dataclass(frozen=True)
class UViTConfig:
    """U-ViT: ``num_classes`` > 0 adds a label token, ``text_dim`` up to ``max_text_tokens`` caption
    tokens; ``frame_cond`` (default "none"): "none" | "token_concat" (clean frames as tokens)."""

    in_channels: int = 4
    patch_size: tuple[int, int, int] = (1, 2, 2)
    hidden_size: int = 512
    depth: int = 12
    num_heads: int = 8
    mlp_ratio: float = 4.0
    qkv_bias: bool = False
    mlp_time_embed: bool = False
    num_classes: int = 0
    text_dim: int | None = None
    max_text_tokens: int = 32
    frame_cond: str = "none"

    def __post_init__(self):
        object.__setattr__(self, "patch_size", _patch(self.patch_size, 3))
        if self.frame_cond not in UVIT_FRAME_CONDITIONING:
            raise ValueError(f"U-ViT frame_cond {self.frame_cond!r}: allowed 'none', 'token_concat' "
                             "(clean frames as tokens)")
        _check_width(self.hidden_size, self.num_heads)
