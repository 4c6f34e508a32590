"""Position embeddings for spacetime tokens of any size: 3D sin-cos (absolute or scaled) and 3D RoPE.

Shapes: coords [..., 3] long (t, y, x) in patch units -> embedding [..., dim] (added to the tokens)
or, for RoPE, (cos, sin) [..., head_dim/2] that rotate queries and keys inside attention.

Default: **absolute 3D sin-cos** (``PatchConfig.position_embedding = "sincos"``). Why: every
token covers the same patch of pixels at every size, so absolute coordinates keep one spacing
for every size and aspect ratio -- a 32x64 video is two 32x32 canvases side by side, not a
stretched one -- which is what native-size training wants; the world's sizes are all seen in
training; and it is added once at the input, so the packed attention stays plain SDPA.
``base_grid`` gives the *scaled* variant (NaViT's fractional positions times a reference grid,
as PixArt-alpha / diffusers' ``interpolation_scale``): a size larger than any seen in training
is squeezed into the range of positions seen. ``rope_3d`` (RoFormer, Su et al. 2021; 3D as in
Open-Sora 2.0 / HunyuanVideo) depends only on offsets between tokens, so it extrapolates by
translation; it must be applied to q and k in every attention layer.
"""

from __future__ import annotations

import torch
from einops import rearrange


def split_dims(dim: int) -> tuple[int, int, int]:
    """Channels (t, y, x) of a 3D sin-cos embedding: a quarter for time, 3/8 for each spatial axis
    (the split CogVideoX uses), each even."""
    if dim % 16 != 0 or dim <= 0:
        raise ValueError(f"3D sin-cos embedding width {dim} must be a positive multiple of 16 "
                         f"(a quarter for time, 3/8 per spatial axis, each even); try {max(16, dim // 16 * 16)}")
    return dim // 4, 3 * dim // 8, 3 * dim // 8


def sincos_1d(pos: torch.Tensor, dim: int, theta: float = 10000.0) -> torch.Tensor:
    """1D sin-cos embedding [sin(p w_i) | cos(p w_i)], w_i = theta^(-i/(dim/2)) (Vaswani 2017; MAE order).

    Shapes: pos [...] (any real values) -> [..., dim] float32, computed in float64.
    """
    if dim % 2 != 0:
        raise ValueError(f"sin-cos embedding width {dim} must be even")
    half = dim // 2
    omega = theta ** (-torch.arange(half, dtype=torch.float64, device=pos.device) / half)  # [dim/2]
    angle = pos.to(torch.float64)[..., None] * omega  # [..., dim/2]
    return torch.cat([angle.sin(), angle.cos()], dim=-1).float()  # [..., dim]


def _positions(coords: torch.Tensor, base_grid, grid) -> torch.Tensor:
    """Float (t, y, x) positions; with ``base_grid`` each axis is rescaled to ``coord * base / size``."""
    if coords.shape[-1] != 3:
        raise ValueError(f"coords must end in (t, y, x), got shape {list(coords.shape)}")
    pos = coords.to(torch.float64)
    if base_grid is None:
        return pos
    if grid is None:
        raise ValueError("the scaled embedding needs each token's grid size (nt, nh, nw): pass grid=")
    grid = torch.as_tensor(grid, dtype=torch.float64, device=coords.device).expand_as(pos)
    scale = torch.tensor([1.0 if b is None else float(b) for b in base_grid], dtype=torch.float64,
                         device=coords.device)
    keep = torch.tensor([b is None for b in base_grid], device=coords.device)
    scaled = pos * scale / grid.clamp(min=1)  # a size equal to the base grid gives the absolute positions
    return torch.where(keep, pos, scaled)


def sincos_3d(coords: torch.Tensor, dim: int, base_grid=None, grid=None) -> torch.Tensor:
    """3D sin-cos position embedding of (t, y, x) coordinates, for any grid size.

    Shapes: coords [..., 3] -> [..., dim]; channels are [t | x | y] with widths (dim/4, 3dim/8,
    3dim/8): the spatial part is exactly MAE / DiT's ``get_2d_sincos_pos_embed`` (column first).
    base_grid: optional (bt, bh, bw) reference grid (an entry None keeps that axis absolute);
    grid: the token's own grid size [..., 3] or a tuple, needed with base_grid.
    """
    dt, dy, dx = split_dims(dim)
    pos = _positions(coords, base_grid, grid)  # [..., 3]
    return torch.cat([sincos_1d(pos[..., 0], dt), sincos_1d(pos[..., 2], dx), sincos_1d(pos[..., 1], dy)],
                     dim=-1)  # [..., dim]


# ----------------------------------------------------------------------------------------------
# 3D rotary position embedding
# ----------------------------------------------------------------------------------------------
def rope_pairs(head_dim: int) -> tuple[int, int, int]:
    """Rotation pairs per axis (t, y, x) of a head of width ``head_dim``: 3/8 of the pairs per
    spatial axis, the rest for time."""
    if head_dim % 2 != 0 or head_dim < 6:
        raise ValueError(f"RoPE head width {head_dim} must be even and at least 6 (one pair per axis)")
    n = head_dim // 2
    ny = max(1, 3 * n // 8)
    return n - 2 * ny, ny, ny


def rope_3d(coords: torch.Tensor, head_dim: int, theta: float = 10000.0, base_grid=None, grid=None):
    """Cos and sin of the rotation angles of 3D RoPE: each pair of channels turns by pos * freq.

    Shapes: coords [..., 3] -> (cos, sin), each [..., head_dim/2] float32.
    """
    pos = _positions(coords, base_grid, grid)  # [..., 3]
    angles = []
    for axis, n in enumerate(rope_pairs(head_dim)):
        freq = theta ** (-torch.arange(n, dtype=torch.float64, device=coords.device) / n)  # [n]
        angles.append(pos[..., axis, None] * freq)  # [..., n]
    angle = torch.cat(angles, dim=-1)  # [..., head_dim/2]
    return angle.cos().float(), angle.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of queries or keys by the RoPE angles.

    Shapes: x [S, H, L, Dh] (or [S, L, Dh]), cos / sin [S, L, Dh/2] -> like x.
    """
    if x.ndim == cos.ndim + 1:  # a heads axis: broadcast the same rotation over heads
        cos, sin = cos.unsqueeze(-3), sin.unsqueeze(-3)
    pairs = rearrange(x, "... (d two) -> ... d two", two=2)  # [..., Dh/2, 2]
    a, b = pairs[..., 0], pairs[..., 1]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    out = torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1)  # [..., Dh/2, 2]
    return rearrange(out, "... d two -> ... (d two)")
