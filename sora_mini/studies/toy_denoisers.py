"""Notebook 03's small denoisers: a residual MLP for 2D points and a two-level conv U-Net for tiny
images, each built from a frozen config (``Model(config)``, or ``Model(**fields)``) and saved /
loaded with ``save_pretrained`` / ``from_pretrained`` (``sora_mini.pretrained``).

Both are backbones on DiT's 0..1000 timestep scale: ``model(x_t, t_scaled, y=labels)``; label
``num_classes`` is the null label (classifier-free guidance).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sora_mini.diffusion.objective import DIT_TIMESTEP_MAX, check_model_timesteps
from sora_mini.models.layers import timestep_embedding
from sora_mini.pretrained import PretrainedMixin
from sora_mini.world.spec import PALETTE


def build_config(cls, config, fields: dict):
    """``config`` itself, or ``cls(**fields)`` when it is None; an error when both or neither fit."""
    if config is not None:
        if fields:
            raise TypeError(f"give a {cls.__name__} or its fields ({', '.join(fields)}), not both")
        if not isinstance(config, cls):
            raise TypeError(f"expected a {cls.__name__}, got {type(config).__name__}")
        return config
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TypeError(f"unknown {cls.__name__} field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return cls(**fields)


@dataclass(frozen=True)
class ToyMLPConfig:
    """The residual MLP: point dimension, width, depth, classes (0: unconditional)."""

    dim: int = 2
    hidden: int = 128
    depth: int = 3
    num_classes: int = 0

    def __post_init__(self):
        if min(self.dim, self.hidden) < 1 or self.depth < 0 or self.num_classes < 0:
            raise ValueError(f"ToyMLPConfig needs dim, hidden >= 1 and depth, num_classes >= 0, got {self}")


class ToyMLP(PretrainedMixin, nn.Module):
    """A residual MLP for points: x + embed(t) + embed(label) -> prediction. Shapes: [B, D] -> [B, D].

    ``ToyMLP(ToyMLPConfig(num_classes=4))`` or ``ToyMLP(num_classes=4)``.
    """

    config_class = ToyMLPConfig
    timestep_range = (0.0, DIT_TIMESTEP_MAX)  # the objective converts its t into this

    def __init__(self, config: ToyMLPConfig | None = None, **fields):
        super().__init__()
        self.config = c = build_config(ToyMLPConfig, config, fields)
        self.num_classes = c.num_classes
        self.inp = nn.Linear(c.dim, c.hidden)
        self.t_proj = nn.Sequential(nn.Linear(64, c.hidden), nn.SiLU(), nn.Linear(c.hidden, c.hidden))
        self.label = nn.Embedding(c.num_classes + 1, c.hidden) if c.num_classes else None  # +1: null
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(c.hidden, c.hidden)) for _ in range(c.depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(c.hidden, c.dim))

    def forward(self, x, t, y=None):
        t = check_model_timesteps(t, self.timestep_range, "ToyMLP")
        h = self.inp(x) + self.t_proj(timestep_embedding(t, 64))  # [B, hidden]
        if self.label is not None:
            h = h + self.label(torch.full_like(t, self.num_classes, dtype=torch.long) if y is None else y)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with a FiLM scale/shift from the embedding (as in ADM / DDPM)."""

    def __init__(self, channels: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(emb, 2 * channels)
        self.norm2, self.conv2 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)  # [B, C, 1, 1] each
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


@dataclass(frozen=True)
class TinyUNetConfig:
    """The two-level U-Net: width (a multiple of 8, for GroupNorm's 8 groups), classes, embedding width."""

    channels: int = 32
    num_classes: int = len(PALETTE)  # the world's colours
    emb: int = 128

    def __post_init__(self):
        if self.channels < 8 or self.channels % 8:
            raise ValueError(f"TinyUNet channels must be a positive multiple of 8 (GroupNorm of 8 groups), "
                             f"got {self.channels}")
        if self.num_classes < 1 or self.emb < 1:
            raise ValueError(f"TinyUNetConfig needs num_classes, emb >= 1, got {self}")


class TinyUNet(PretrainedMixin, nn.Module):
    """A two-level conv U-Net for small images, conditioned on t and a colour label.

    Shapes: x [B, 3, H, W] (H, W even), t [B] (0..1000 scale), y [B] -> [B, 3, H, W].
    ``TinyUNet(TinyUNetConfig(channels=16))`` or ``TinyUNet(channels=16)``.
    """

    config_class = TinyUNetConfig
    timestep_range = (0.0, DIT_TIMESTEP_MAX)  # the objective converts its t into this

    def __init__(self, config: TinyUNetConfig | None = None, **fields):
        super().__init__()
        self.config = cfg = build_config(TinyUNetConfig, config, fields)
        c, emb = cfg.channels, cfg.emb
        self.num_classes = cfg.num_classes
        self.t_proj = nn.Sequential(nn.Linear(64, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(cfg.num_classes + 1, emb)  # index num_classes = null (unconditional)
        self.inp = nn.Conv2d(3, c, 3, padding=1)
        self.enc = _ResBlock(c, emb)
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([_ResBlock(2 * c, emb), _ResBlock(2 * c, emb)])
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.dec = _ResBlock(c, emb)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, x, t, y=None):
        if y is None:
            y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
        t = check_model_timesteps(t, self.timestep_range, "TinyUNet")
        e = self.t_proj(timestep_embedding(t, 64)) + self.label(y)  # [B, emb]
        h1 = self.enc(self.inp(x), e)  # [B, c, H, W]
        h = self.down(h1)  # [B, 2c, H/2, W/2]
        for block in self.mid:
            h = block(h, e)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest")) + h1  # [B, c, H, W]
        return self.out(self.dec(h, e))
