"""Pixels -> per-colour coverage: background, colour unmixing of anti-aliased edges, specks.

An anti-aliased edge pixel of an object of colour ``c`` over background ``b`` is ``b + a (c - b)``
with coverage ``a`` in [0, 1]. For every palette colour the best ``a`` is the projection of
``p - b`` on ``c - b``; the pixel goes to the colour whose line passes closest (smallest residual).
Shapes: ``px`` float ``[T, H, W, 3]`` -> labels / coverage / residual ``[T, H, W]``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from sora_mini.world.spec import BACKGROUNDS, PALETTE

NONE = -1  # label of a background pixel
UNKNOWN = -2  # label of a pixel no single colour explains (two objects' edges mix there)
FAINT = 4.0  # a pixel this close to the background (0-255 units) is background


def estimate_background(px: np.ndarray, radius: float = 40.0) -> tuple[str, np.ndarray, float]:
    """The vocabulary background most pixels are near -> (name, its measured RGB: their median,
    the pixel noise: a robust standard deviation per channel around it; 0 for a clean render)."""
    names = list(BACKGROUNDS)
    refs = np.array([BACKGROUNDS[n] for n in names], dtype=np.float32)  # [B, 3]
    sample = px.reshape(-1, 3)
    sample = sample[:: max(1, len(sample) // 20000)]  # a spread-out subset is plenty
    dist = np.linalg.norm(sample[:, None, :] - refs[None], axis=-1)  # [N, B]
    nearest = dist.argmin(1)
    votes = np.bincount(nearest[dist.min(1) < radius], minlength=len(names))
    best = int(np.argmax(votes))
    own = sample[(nearest == best) & (dist[:, best] < radius)]
    if not len(own):
        return names[best], refs[best], 0.0
    bg = np.median(own, axis=0)
    noise = 1.4826 * float(np.median(np.abs(own - bg)))  # MAD -> sigma for Gaussian noise
    return names[best], bg, noise


def unmix(px: np.ndarray, bg: np.ndarray, tolerance: float = 14.0, noise: float = 0.0):
    """Per pixel: palette index (or NONE / UNKNOWN), coverage in [0, 1], colour residual.

    A pixel within ``FAINT`` (or 3 noise lengths) of the background is background; one is UNKNOWN
    when its residual exceeds ``tolerance`` (+5% of its distance from the background, + 2 noise
    lengths). ``noise`` is the pixel noise per channel. -> three ``[T, H, W]`` arrays.
    """
    faint = max(FAINT, 3.0 * np.sqrt(3.0) * noise)
    tolerance = tolerance + 2.0 * np.sqrt(3.0) * noise
    cols = np.array(list(PALETTE.values()), dtype=np.float32) - bg  # [K, 3]
    diff = (px - bg).reshape(-1, 3)  # [N, 3]
    strength2 = (diff**2).sum(-1)
    labels = np.full(len(diff), NONE, dtype=np.int64)
    alpha = np.zeros(len(diff), dtype=np.float32)
    res = np.zeros(len(diff), dtype=np.float32)
    fg = np.flatnonzero(strength2 >= faint**2)
    d = diff[fg]
    dots = d @ cols.T  # [n, K]
    norm2 = (cols**2).sum(-1)
    a = np.clip(dots / norm2, 0.0, 1.0)
    resid2 = np.maximum(strength2[fg, None] - 2 * a * dots + a * a * norm2, 0.0)  # |d - a c|^2
    best = resid2.argmin(-1)
    rows = np.arange(len(fg))
    r = np.sqrt(resid2[rows, best])
    ok = r <= tolerance + 0.05 * np.sqrt(strength2[fg])
    labels[fg] = np.where(ok, best, UNKNOWN)
    alpha[fg] = np.where(ok, a[rows, best], 0.0)
    res[fg] = r
    shape = px.shape[:-1]
    return labels.reshape(shape), alpha.reshape(shape), res.reshape(shape)


def core_pixels(a: np.ndarray, known: np.ndarray) -> np.ndarray:
    """[T, H, W] bool: solid pixels (coverage >= 0.9) whose 3x3 neighbourhood holds only this
    colour or background. The blend of two other objects' edges (red over yellow looks orange)
    has none, a real object has some."""
    return (a >= 0.9) & ndimage.binary_erosion(known, np.ones((1, 3, 3)), border_value=1)


def drop_specks(a: np.ndarray, known: np.ndarray, share: float = 0.1):
    """Remove blobs holding under ``share`` of a frame's coverage that touch no other object (noise
    in generated videos; a piece cut off by an occluder touches it and stays) -> (a, known)."""
    a, known = a.copy(), known.copy()
    for t in range(a.shape[0]):
        lab, n = ndimage.label(a[t] > 0, structure=np.ones((3, 3)))
        if n > 1:
            mass = ndimage.sum(a[t], lab, index=np.arange(1, n + 1))
            for b in np.flatnonzero(mass < share * mass.sum()) + 1:
                blob = lab == b
                if known[t][ndimage.binary_dilation(blob, np.ones((3, 3)))].all():
                    a[t][blob] = 0.0
                    known[t][blob] = False
    return a, known


def largest_piece_share(a: np.ndarray) -> np.ndarray:
    """[T, H, W] coverage -> [T] share of each frame's coverage in its largest 8-connected piece
    (1 for one solid shape; colour noise scattered over the frame gives a small share)."""
    out = np.zeros(a.shape[0])
    for t in range(a.shape[0]):
        lab, n = ndimage.label(a[t] > 0, structure=np.ones((3, 3)))
        if n:
            mass = ndimage.sum(a[t], lab, index=np.arange(1, n + 1))
            out[t] = mass.max() / max(mass.sum(), 1e-9)
    return out
