"""Spacetime patches: cut a latent video [C, t, h, w] into tokens of (pt, ph, pw) cells, and back.

Shapes: latent [..., C, t, h, w] <-> tokens [..., n, C*pt*ph*pw] with n = (t/pt)(h/ph)(w/pw),
plus long coordinates [n, 3] = (t, y, x) of each token in patch units.
Sora technical report ("Video generation models as world simulators", 2024): "spacetime latent
patches" of a compressed video act as transformer tokens, for any duration, size and aspect ratio.
"""

from __future__ import annotations

import torch
from einops import rearrange

PatchSize = tuple[int, int, int]
AXES = ("frames", "height", "width")


def _check_patch(patch: PatchSize) -> tuple[int, int, int]:
    if len(patch) != 3 or any(int(p) < 1 for p in patch):
        raise ValueError(f"patch size {tuple(patch)} must be three positive integers (pt, ph, pw)")
    return tuple(int(p) for p in patch)


def patch_grid(latent_shape, patch: PatchSize) -> tuple[int, int, int]:
    """Token grid (nt, nh, nw) of a latent of shape [..., C, t, h, w]; a clear error when a side
    is not a multiple of the patch."""
    pt, ph, pw = _check_patch(patch)
    shape = tuple(int(s) for s in latent_shape)
    if len(shape) < 4:
        raise ValueError(f"latent of shape {list(shape)} must be [C, t, h, w] (or with batch dims in front)")
    sides = shape[-3:]
    for axis, side, p in zip(AXES, sides, (pt, ph, pw)):
        if side % p != 0 or side == 0:
            down, up = (side // p) * p, -(-side // p) * p
            hint = f"crop it to {down} or pad it to {up}" if down > 0 else f"pad it to {up}"
            raise ValueError(
                f"latent {axis} {side} is not a multiple of the patch {p} (latent {list(shape)}, "
                f"patch (pt, ph, pw) = {(pt, ph, pw)}); {hint}"
            )
    return sides[0] // pt, sides[1] // ph, sides[2] // pw


def grid_coords(grid: tuple[int, int, int], device=None) -> torch.Tensor:
    """Long (t, y, x) coordinates of every token of a grid, in token order (t-major, then y, x).

    Shapes: grid (nt, nh, nw) -> [nt*nh*nw, 3].
    """
    nt, nh, nw = (int(g) for g in grid)
    t, y, x = torch.meshgrid(
        torch.arange(nt, device=device), torch.arange(nh, device=device), torch.arange(nw, device=device),
        indexing="ij",
    )
    return torch.stack([t, y, x], dim=-1).reshape(-1, 3)  # [n, 3]


def patchify(latent: torch.Tensor, patch: PatchSize) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut a latent video into spacetime patch tokens and give each its (t, y, x) coordinate.

    Shapes: latent [..., C, t, h, w] -> tokens [..., n, C*pt*ph*pw], coords [n, 3] (long).
    Features within a token are ordered (c pt ph pw), like the flattened weight of a Conv3d
    patch embedding, so ``Linear(tokens)`` equals that convolution.
    """
    pt, ph, pw = _check_patch(patch)
    grid = patch_grid(latent.shape, (pt, ph, pw))
    tokens = rearrange(
        latent, "... c (nt pt) (nh ph) (nw pw) -> ... (nt nh nw) (c pt ph pw)", pt=pt, ph=ph, pw=pw
    )  # [..., n, D]
    return tokens, grid_coords(grid, device=latent.device)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], patch: PatchSize) -> torch.Tensor:
    """Put patch tokens back into a latent video: the exact inverse of :func:`patchify`.

    Shapes: tokens [..., n, C*pt*ph*pw] with n = nt*nh*nw -> latent [..., C, nt*pt, nh*ph, nw*pw].
    """
    pt, ph, pw = _check_patch(patch)
    nt, nh, nw = (int(g) for g in grid)
    n, dim = tokens.shape[-2], tokens.shape[-1]
    if n != nt * nh * nw:
        raise ValueError(f"{n} tokens do not fill the grid (nt, nh, nw) = {(nt, nh, nw)} of {nt * nh * nw} tokens")
    if dim % (pt * ph * pw) != 0:
        raise ValueError(f"token width {dim} is not a multiple of the patch volume {pt}*{ph}*{pw} = {pt * ph * pw}")
    return rearrange(
        tokens, "... (nt nh nw) (c pt ph pw) -> ... c (nt pt) (nh ph) (nw pw)",
        nt=nt, nh=nh, nw=nw, pt=pt, ph=ph, pw=pw,
    )  # [..., C, t, h, w]


def pooled_latent(video: torch.Tensor, spatial_factor: int, temporal_factor: int) -> torch.Tensor:
    """A stand-in latent with a causal autoencoder's shape: average pooling instead of an encoder.

    Shapes: video [C, T, H, W] (T = 1 + k n) -> [C, 1 + (T-1)/k, H/s, W/s]; the first frame is
    pooled alone and each later latent frame pools k frames, as a causal 3D VAE's time axis does.
    """
    _, t, h, w = video.shape
    k, s = temporal_factor, spatial_factor
    if not frames_fit(t, k) or h % s or w % s:
        raise ValueError(f"video [C, T, H, W] = {list(video.shape)} needs T = 1 + {k}n and H, W multiples of {s}")
    first = video[:, :1].mean(1, keepdim=True)  # [C, 1, H, W]
    rest = rearrange(video[:, 1:], "c (t k) h w -> c t k h w", k=k).mean(2)  # [C, (T-1)/k, H, W]
    frames = torch.cat([first, rest], dim=1)  # [C, t, H, W]
    return rearrange(frames, "c t (h s1) (w s2) -> c t h w s1 s2", s1=s, s2=s).mean((-1, -2))


def frames_fit(frames: int, temporal_factor: int) -> bool:
    """True when a causal autoencoder of ``temporal_factor`` takes ``frames`` as is (``1 + k n``)."""
    return frames >= 1 and (frames - 1) % temporal_factor == 0


def nearest_frame_counts(frames: int, temporal_factor: int) -> tuple[int, ...]:
    """The valid frame counts ``1 + k n`` nearest ``frames``: ``(frames,)`` when it is valid, else
    the one below and the one above (only the one above, 1, when ``frames < 1``)."""
    k = temporal_factor
    if frames_fit(frames, k):
        return (frames,)
    if frames < 1:
        return (1,)
    below = 1 + (frames - 1) // k * k
    return (below, below + k)


def latent_frames(frames: int, temporal_factor: int) -> int:
    """Latent frames of a causal autoencoder: ``1 + (T - 1) // k`` (the first frame alone, then
    ``k`` frames per latent frame); a ``ValueError`` naming the nearest valid counts otherwise."""
    k = temporal_factor
    if not frames_fit(frames, k):
        near = " or ".join(str(n) for n in nearest_frame_counts(frames, k))
        raise ValueError(f"{frames} frames do not fit a causal temporal factor {k}: use 1 + {k}n "
                         f"frames (the first frame alone, then groups of {k}); try {near} frames")
    return 1 + (frames - 1) // k


def latent_grid(video_hw: tuple[int, int], frames: int, spatial_factor: int, temporal_factor: int,
                patch: PatchSize) -> tuple[int, int, int]:
    """Token grid of a video of (H, W) pixels and T frames after a causal autoencoder and patching.

    Latent frames are 1 + (T - 1) / k (:func:`latent_frames`).
    """
    h, w = video_hw
    t = latent_frames(frames, temporal_factor)
    if h % spatial_factor or w % spatial_factor:
        raise ValueError(f"video {h}x{w} is not a multiple of the spatial factor {spatial_factor}")
    return patch_grid((1, t, h // spatial_factor, w // spatial_factor), patch)
