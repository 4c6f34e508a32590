"""A small video encoder for CLIP and the captioner: a few 3D convolutions over pixels.

    video [B, 3, T, H, W] in [-1, 1]  (+ 3 coordinate channels x, y, t in [-1, 1])
      -> len(channels) stages of Conv3d(k=3, stride (1, 2, 2)) + GroupNorm + SiLU
         (the first ``downsample`` stages halve height and width, the others keep them)
      -> feature map [B, C, T, H / 2^d, W / 2^d]
      -> tokens [B, N = T * H' * W', C]   (what the captioner's decoder cross-attends to)
      -> pooled [B, C]                    (their mean: what CLIP projects)
      (-> tokens [B, N, C + 6F]            with ``positions=F``: each token's x, y, t appended)

With ``positions=F > 0`` every token also carries where and when it is: sin / cos features of its
x, y and t (each in [-1, 1]; t as a fraction of the clip) at F frequencies, concatenated to its
channels. A decoder's cross-attention treats its memory as a set: without them, which token is
early or late is only what the convolutions kept of the CoordConv channels at the input.

With ``differences=True`` three more channels hold each frame minus the one before (two-stream
networks' "RGB difference"): where and how far things moved, given rather than learned.

The coordinate channels (CoordConv) let mean-pooled features still say *where* a shape is,
which the captions state ("starts at the top left"). Any T >= 1 and H, W divisible by
``2 ** downsample`` work; time is never downsampled. Fewer downsampling stages give the
decoder finer tokens (an 8 x 8 grid for a 32 x 32 frame with ``downsample=2``, against 4 x 4 with
three) at about twice the encoder's cost. The stride holds no weight, so a trained encoder's
weights load into one of any ``downsample``.

All three options were measured in the captioner at ``small`` (the README's captioner section):
none of them taught it to tell a move from a turn in 1000 steps, so the presets leave them off.
"""

from __future__ import annotations

import torch
from torch import nn


def fourier_features(coords: torch.Tensor, frequencies: int) -> torch.Tensor:
    """``coords [N, D]`` in [-1, 1] -> ``[N, 2 * D * frequencies]``: sin and cos of each
    coordinate times (pi / 2) * 2^k, k = 0 .. frequencies - 1 (a transformer's position encoding;
    the lowest frequency spans half a period, so -1 and 1 are told apart)."""
    scales = torch.pi / 2 * 2.0 ** torch.arange(frequencies, device=coords.device, dtype=coords.dtype)
    angles = (coords[..., None] * scales).flatten(-2)
    return torch.cat([angles.sin(), angles.cos()], -1)


def _groups(c: int) -> int:
    return next(g for g in (8, 4, 2, 1) if c % g == 0)


class VideoEncoder(nn.Module):
    """``forward(video) -> (tokens [B, N, C], pooled [B, C])`` with ``C = channels[-1]``."""

    def __init__(self, channels: tuple[int, ...] = (16, 32, 64), downsample: int | None = None,
                 differences: bool = False, positions: int = 0):
        super().__init__()
        if not channels:
            raise ValueError("a video encoder needs at least one stage: give channels such as (16, 32)")
        downsample = len(channels) if downsample is None else downsample
        if not 0 <= downsample <= len(channels):
            raise ValueError(f"downsample={downsample}: give the number of the {len(channels)} stages that halve "
                             f"height and width, from 0 to {len(channels)} (None: every stage)")
        self.differences = bool(differences)
        layers, c_in = [], 3 + 3 + (3 if differences else 0)
        for i, c in enumerate(channels):
            stride = (1, 2, 2) if i < downsample else 1
            layers += [nn.Conv3d(c_in, c, 3, stride=stride, padding=1), nn.GroupNorm(_groups(c), c),
                       nn.SiLU(), nn.Conv3d(c, c, 3, padding=1), nn.GroupNorm(_groups(c), c), nn.SiLU()]
            c_in = c
        self.net = nn.Sequential(*layers)
        if isinstance(positions, bool) or not isinstance(positions, int) or positions < 0:
            raise ValueError(f"positions must be a number of frequencies >= 0, got {positions!r}")
        self.positions = positions
        self.dim = channels[-1] + 6 * positions  # each token's features, then its position's
        self.factor = 2 ** downsample

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
                             f"this video encoder ({self.factor.bit_length() - 1} stages of 2x downsampling)")
        parts = [video, self.coordinates(video)]
        if self.differences:  # frame t minus frame t - 1 (zeros at t = 0): where things moved, explicitly
            parts.append(torch.cat([torch.zeros_like(video[:, :, :1]), video[:, :, 1:] - video[:, :, :-1]], 2))
        x = torch.cat(parts, 1)
        feats = self.net(x)  # [B, C, T, H', W']
        tokens = feats.flatten(2).transpose(1, 2)  # [B, N, C]
        pooled = tokens.mean(1)
        if self.positions:
            grid = self.coordinates(feats[:, :1])[0].flatten(1).T  # [N, 3]: x, y, t of each token
            tokens = torch.cat([tokens, fourier_features(grid, self.positions).expand(len(tokens), -1, -1)], -1)
        return tokens, pooled

    def load_encoder(self, other: "VideoEncoder") -> None:
        """Copy ``other``'s weights (the same channels), e.g. a trained CLIP video tower. Into an
        encoder with ``differences`` from one without, the difference channels' first-layer
        weights start at zero, so the copy computes what ``other`` computes."""
        state = dict(other.state_dict())
        first = self.net[0].weight
        if state["net.0.weight"].shape[1] < first.shape[1]:
            w = torch.zeros_like(first)
            w[:, : state["net.0.weight"].shape[1]] = state["net.0.weight"]
            state["net.0.weight"] = w
        self.load_state_dict(state)
