"""Convolutional encoder and decoder, in 2D (one frame at a time) or 3D (causal in time).

The two variants are built from the same recipe (LDM's ``Encoder``/``Decoder``, Rombach et al.
2022) so that a comparison of them measures one thing, whether the network looks across time.
The first 2x2 of spatial compression is a lossless reshape (pixel unshuffle: each 2x2 block of
pixels becomes 12 channels, as LTX-Video's VAE does with 4x4), so no convolution runs at full
resolution: a quarter of the cost for the same width, and sharp edges stay reachable.
  2D: ``[N, 3, H, W] -> [N, C, H/s, W/s]``, frames folded into the batch by the caller.
  3D: ``[B, 3, T, H, W] -> [B, C, 1 + (T-1)/k, H/s, W/s]``, causal convolutions; the first
      ``log2(k)`` downsamplings also halve time (CogVideoX, ``compress_time = i < log2(k)``), and
      a downsampling may halve time alone when time needs more halvings than space.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .layers import (
    Downsample2d,
    Downsample3d,
    FrameNorm,
    ResBlock,
    Upsample2d,
    Upsample3d,
    conv2d,
    conv3d,
    frame_conv3d,
    time_shuffle,
    time_unshuffle,
)


def _log2(factor: int, what: str) -> int:
    n = round(math.log2(factor)) if factor >= 1 else -1
    if n < 0 or 2**n != factor:
        raise ValueError(f"{what} compression {factor} must be a power of 2 (1, 2, 4, 8)")
    return n


def channel_widths(base_channels: int, levels: int, deep_mult: int = 2) -> list[int]:
    """Widths per resolution level: ``base`` at the patch grid, ``base * deep_mult`` below it."""
    return [base_channels * (1 if i == 0 else deep_mult) for i in range(levels + 1)]


def pixel_unshuffle(x: torch.Tensor, p: int) -> torch.Tensor:
    """``[.., C, (T), H, W] -> [.., C p p, (T), H/p, W/p]``: each ``p x p`` block becomes channels."""
    if x.ndim == 5:
        return rearrange(x, "b c t (h p1) (w p2) -> b (c p1 p2) t h w", p1=p, p2=p)
    return rearrange(x, "n c (h p1) (w p2) -> n (c p1 p2) h w", p1=p, p2=p)


def pixel_shuffle(x: torch.Tensor, p: int) -> torch.Tensor:
    """Inverse of :func:`pixel_unshuffle`: ``[.., C p p, (T), h, w] -> [.., C, (T), h p, w p]``."""
    if x.ndim == 5:
        return rearrange(x, "b (c p1 p2) t h w -> b c t (h p1) (w p2)", p1=p, p2=p)
    return rearrange(x, "n (c p1 p2) h w -> n c (h p1) (w p2)", p1=p, p2=p)


def level_convs(dims: int, n_levels: int, frame_levels: int) -> list:
    """The convolution of each level: 2D, or causal 3D except the ``frame_levels`` finest levels,
    whose blocks see one frame at a time (time is then mixed by the strided temporal convolutions
    and by the coarser levels, where a 3D convolution costs 1/4 per level)."""
    if dims == 2:
        return [conv2d] * (n_levels + 1)
    return [frame_conv3d if i < frame_levels else conv3d for i in range(n_levels + 1)]


def patch_and_levels(spatial_factor: int, temporal_factor: int, patch: int,
                     time_patch: int = 1) -> tuple[int, int]:
    """``(levels, time_levels)``: strided downsamplings in space and in time after the patch reshapes."""
    s, k, p = _log2(spatial_factor, "spatial"), _log2(temporal_factor, "temporal"), _log2(patch, "patch")
    pt = _log2(time_patch, "time patch")
    if p > s:
        raise ValueError(f"patch {patch} is larger than the spatial compression {spatial_factor}")
    if pt > k:
        raise ValueError(f"time_patch {time_patch} is larger than the temporal compression {temporal_factor}")
    return s - p, k - pt


class Encoder(nn.Module):
    """``unshuffle -> conv_in -> [ResBlock x n, Down] per level -> ResBlock x m -> norm, SiLU, conv_out``.

    ``dims=2``: ``[N, 3, H, W] -> [N, out, H/s, W/s]``.
    ``dims=3``: ``[B, 3, T, H, W] -> [B, out, 1 + (T-1)/k, H/s, W/s]``.
    """

    def __init__(self, dims: int, out_channels: int, base_channels: int = 16,
                 spatial_factor: int = 4, temporal_factor: int = 1, num_blocks: int = 1,
                 patch: int = 2, mid_blocks: int = 1, deep_mult: int = 2, frame_levels: int = 0,
                 time_patch: int = 1, in_channels: int = 3):
        super().__init__()
        levels, time_levels = patch_and_levels(spatial_factor, temporal_factor, patch, time_patch)
        if dims == 2 and (time_levels or time_patch > 1):
            raise ValueError("a 2D (per-frame) encoder cannot compress time; use temporal_factor=1")
        n = max(levels, time_levels)
        convs = level_convs(dims, n, frame_levels)
        widths = channel_widths(base_channels, n, deep_mult)
        self.patch, self.time_patch = patch, time_patch
        self.conv_in = convs[0](in_channels * patch * patch * time_patch, widths[0])
        stages = []
        for i in range(n):
            blocks = [ResBlock(widths[i], widths[i], convs[i]) for _ in range(num_blocks)]
            down = (Downsample3d(widths[i], widths[i + 1], spatial=i < levels, temporal=i < time_levels)
                    if dims == 3 else Downsample2d(widths[i], widths[i + 1]))
            stages.append(nn.Sequential(*blocks, down))
        self.stages = nn.Sequential(*stages)
        # the latent resolution is the cheapest place for depth: 1/s^2 (and 1/k) of the voxels
        self.mid = nn.Sequential(*[ResBlock(widths[-1], widths[-1], convs[-1]) for _ in range(mid_blocks)])
        self.norm_out = FrameNorm(widths[-1])
        self.conv_out = convs[-1](widths[-1], out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = time_unshuffle(x, self.time_patch)  # [B, 3 pt, 1 + (T-1)/pt, H, W] (as is when pt = 1)
        h = self.conv_in(pixel_unshuffle(x, self.patch))  # [.., w0, (T), H/p, W/p]
        h = self.mid(self.stages(h))  # [.., w_L, (t), H/s, W/s]
        return self.conv_out(F.silu(self.norm_out(h)))  # [.., out, (t), H/s, W/s]


class Decoder(nn.Module):
    """Mirror of :class:`Encoder`: ``conv_in -> ResBlock x m -> [Up, ResBlock x n] per level -> conv_out
    -> shuffle``.

    The last ``log2(k)`` upsamplings (nearest the pixels) also double time, so decoding is causal
    too: output frame ``t`` depends on latent frames ``<= ceil(t / k)``.
    ``dims=3``: ``[B, C, t, h, w] -> [B, 3, 1 + (t-1) k, h s, w s]``; ``dims=2`` per frame.
    """

    def __init__(self, dims: int, in_channels: int, base_channels: int = 16,
                 spatial_factor: int = 4, temporal_factor: int = 1, num_blocks: int = 1,
                 patch: int = 2, mid_blocks: int = 1, deep_mult: int = 2, frame_levels: int = 0,
                 time_patch: int = 1, temporal_upsample: str = "repeat", out_channels: int = 3):
        super().__init__()
        levels, time_levels = patch_and_levels(spatial_factor, temporal_factor, patch, time_patch)
        n = max(levels, time_levels)
        convs = level_convs(dims, n, frame_levels)
        widths = channel_widths(base_channels, n, deep_mult)
        self.patch, self.time_patch = patch, time_patch
        self.conv_in = convs[-1](in_channels, widths[-1])
        # the latent resolution is the cheapest place for depth: 1/s^2 (and 1/k) of the voxels
        self.mid = nn.Sequential(*[ResBlock(widths[-1], widths[-1], convs[-1]) for _ in range(mid_blocks)])
        stages = []
        for i in reversed(range(n)):  # level i + 1 -> level i
            up = (Upsample3d(widths[i + 1], widths[i], spatial=i < levels, temporal=i < time_levels,
                             mode=temporal_upsample)
                  if dims == 3 else Upsample2d(widths[i + 1], widths[i]))
            blocks = [ResBlock(widths[i], widths[i], convs[i]) for _ in range(num_blocks)]
            stages.append(nn.Sequential(up, *blocks))
        self.stages = nn.Sequential(*stages)
        self.norm_out = FrameNorm(widths[0])
        self.conv_out = convs[0](widths[0], out_channels * patch * patch * time_patch)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))  # [.., w_L, (t), h, w]
        h = self.stages(h)  # [.., w0, (T), H/p, W/p]
        h = self.conv_out(F.silu(self.norm_out(h)))  # [.., 3 p p, (T), H/p, W/p]
        h = pixel_shuffle(h, self.patch)  # [.., 3 pt, (T), H, W]
        return time_shuffle(h, self.time_patch)  # [.., 3, (T), H, W]
