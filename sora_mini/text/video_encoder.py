"""A small video encoder for CLIP and the captioner: a few 3D convolutions over pixels.

    video [B, 3, T, H, W] in [-1, 1]  (+ 3 coordinate channels x, y, t in [-1, 1])
      -> len(channels) stages of Conv3d(k=3, stride (1, 2, 2)) + GroupNorm + SiLU
      -> feature map [B, C, T, H / 2^s, W / 2^s]
      -> tokens [B, N = T * H' * W', C]   (what the captioner's decoder cross-attends to)
      -> pooled [B, C]                    (their mean: what CLIP projects)

The coordinate channels (CoordConv) let mean-pooled features still say *where* a shape is,
which the captions state ("starts at the top left"). Any T >= 1 and H, W divisible by
``2 ** len(channels)`` work; time is never downsampled.
"""

from __future__ import annotations

import torch
from torch import nn


def _groups(c: int) -> int:
    return next(g for g in (8, 4, 2, 1) if c % g == 0)


class VideoEncoder(nn.Module):
    """``forward(video) -> (tokens [B, N, C], pooled [B, C])`` with ``C = channels[-1]``."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        if not channels:
            raise ValueError("a video encoder needs at least one stage: give channels such as (16, 32)")
        layers, c_in = [], 3 + 3
        for c in channels:
            layers += [nn.Conv3d(c_in, c, 3, stride=(1, 2, 2), padding=1), nn.GroupNorm(_groups(c), c),
                       nn.SiLU(), nn.Conv3d(c, c, 3, padding=1), nn.GroupNorm(_groups(c), c), nn.SiLU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        self.dim = channels[-1]
        self.factor = 2 ** len(channels)

    @staticmethod
    def coordinates(video: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` channels x, y, t, each in [-1, 1] (t = 0 for an image)."""
        b, _, t, h, w = video.shape
        axes = [torch.linspace(-1, 1, n, device=video.device, dtype=video.dtype) if n > 1
                else torch.zeros(1, device=video.device, dtype=video.dtype) for n in (t, h, w)]
        tt, yy, xx = torch.meshgrid(*axes, indexing="ij")
        return torch.stack([xx, yy, tt]).expand(b, 3, t, h, w)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if video.ndim != 5 or video.shape[1] != 3:
            raise ValueError(f"expected a video batch [B, 3, T, H, W] in [-1, 1], got shape "
                             f"{tuple(video.shape)}")
        h, w = video.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"height and width ({h}, {w}) must be multiples of {self.factor} for "
                             f"this video encoder ({len(self.net) // 6} stages of 2x downsampling)")
        x = torch.cat([video, self.coordinates(video)], 1)
        feats = self.net(x)  # [B, C, T, H', W']
        tokens = feats.flatten(2).transpose(1, 2)  # [B, N, C]
        return tokens, tokens.mean(1)
