"""Render a scene spec to a video at any height, width and duration, with its ground truth.

``render(spec, height, width, frames) -> (video uint8 [T, H, W, 3], Annotations)``.
Positions are fractions of the width / height and sizes / speeds fractions of the shorter side,
so one spec gives the same scene at 32x32, 32x64 or 64x32, and a 1-frame render is an image.
Edges are anti-aliased by analytic pixel coverage (the share of each pixel inside the shape,
exact for the square, from the signed distance for the circle and triangle), vectorised over
frames and pixels. Later objects are drawn over earlier ones.
"""

from __future__ import annotations

import math

import numpy as np

from sora_mini.world.annotations import Annotations, ObjectTrack
from sora_mini.world.physics import trajectory
from sora_mini.world.spec import BACKGROUNDS, MIN_SIZE, PALETTE, SHAPES, SceneSpec

_SQRT5 = math.sqrt(5.0)


def check_size(height, width, frames) -> None:
    """Raise a ValueError that names the bad value and the minimum for an unusable video size."""
    for name, v, low in (("height", height, MIN_SIZE), ("width", width, MIN_SIZE), ("frames", frames, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {v!r}")
        if v < low:
            unit = " pixels" if name != "frames" else ""
            raise ValueError(f"{name} {v} is too small: the world renders {name} >= {low}{unit} "
                             f"(smaller shapes become unreadable); try {max(low, 32) if unit else 1}")


def _window(center: np.ndarray, half_extent: np.ndarray, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns that the shape touches in any frame (drawing only there is much faster)."""
    lo = np.floor((center - half_extent[:, None]).min(axis=0) - 1).astype(int)
    hi = np.ceil((center + half_extent[:, None]).max(axis=0) + 1).astype(int)
    return slice(max(lo[1], 0), min(hi[1], height)), slice(max(lo[0], 0), min(hi[0], width))


def _coverage(shape: str, center: np.ndarray, half_extent: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
    """Coverage inside the window ``rows x cols`` -> float32 ``[T, len(rows), len(cols)]``."""
    xs = np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5  # pixel centres
    ys = np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5
    cx = center[:, 0].astype(np.float32)[:, None, None]  # [T, 1, 1]
    cy = center[:, 1].astype(np.float32)[:, None, None]
    r = half_extent.astype(np.float32)[:, None, None]
    dx = xs[None, None, :] - cx  # [T, 1, w]
    dy = ys[None, :, None] - cy  # [T, h, 1]
    if shape == "square":  # exact box-filter coverage: product of the 1D overlaps
        cov_x = np.clip(r - np.abs(dx) + 0.5, 0.0, 1.0)  # [T, 1, w]
        cov_y = np.clip(r - np.abs(dy) + 0.5, 0.0, 1.0)  # [T, h, 1]
        return cov_x * cov_y  # [T, h, w]
    if shape == "circle":
        dist = np.sqrt(dx * dx + dy * dy) - r  # [T, h, w] signed distance, negative inside
    else:  # triangle: the largest signed distance to its three edges
        base = dy - r  # [T, h, 1]
        sides = (2.0 * np.abs(dx) - dy - r) / _SQRT5  # [T, h, w]
        dist = np.maximum(base, sides)
    return np.clip(0.5 - dist, 0.0, 1.0)


def coverage(shape: str, center: np.ndarray, half_extent: np.ndarray, height: int, width: int) -> np.ndarray:
    """Share of each pixel covered by the shape in each frame (anti-aliased mask).

    ``center [T, 2]`` (x, y) and ``half_extent [T]`` in pixels -> ``float32 [T, H, W]`` in [0, 1].
    Circle: radius ``r``; square: side ``2r``; triangle: apex up at ``y - r``, base ``2r`` wide at ``y + r``.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; allowed: {', '.join(SHAPES)}")
    center, half_extent = np.asarray(center, dtype=np.float64), np.asarray(half_extent, dtype=np.float64)
    out = np.zeros((len(center), height, width), dtype=np.float32)
    rows, cols = _window(center, half_extent, height, width)
    if rows.stop > rows.start and cols.stop > cols.start:
        out[:, rows, cols] = _coverage(shape, center, half_extent, rows, cols)
    return out


def render(spec: SceneSpec, height: int, width: int, frames: int) -> tuple[np.ndarray, Annotations]:
    """Draw ``spec`` as a ``frames``-long video of ``height x width`` pixels.

    Returns ``video`` uint8 ``[T, H, W, 3]`` and ``Annotations`` (boxes, centres, half-extents,
    velocities and visibility per frame and object; bounce / appear / disappear / turn events).
    Deterministic: the same spec and size always give the same bytes.
    """
    if not isinstance(spec, SceneSpec):
        raise TypeError(f"render needs a SceneSpec, got {type(spec).__name__}; "
                        "build one with sample_spec(seed) or SceneSpec.from_json(text)")
    spec.validate()
    check_size(height, width, frames)
    height, width, frames = int(height), int(width), int(frames)
    trajs = [trajectory(o, i, height, width, frames) for i, o in enumerate(spec.objects)]
    windows = [_window(tr.center, tr.half_extent, height, width) for tr in trajs]
    alphas = [_coverage(o.shape, tr.center, tr.half_extent, *win) * tr.visible[:, None, None]
              for o, tr, win in zip(spec.objects, trajs, windows)]  # each [T, h, w] inside its window

    # composite per colour channel: numpy is several times faster on [T, H, W] planes than on a
    # trailing axis of 3, and each object only touches its window
    planes = np.empty((3, frames, height, width), dtype=np.float32)  # [3, T, H, W]
    for ch, value in enumerate(BACKGROUNDS[spec.background]):
        planes[ch] = value
    for o, a, (rows, cols) in zip(spec.objects, alphas, windows):  # painter's order: later on top
        keep = 1.0 - a  # [T, h, w]
        for ch, value in enumerate(PALETTE[o.color]):
            patch = planes[ch, :, rows, cols]  # a view: edited in place
            patch *= keep
            patch += a * np.float32(value)
    planes += 0.5  # round to nearest on the cast below (values stay within [0.5, 255.5])
    video = np.empty((frames, height, width, 3), dtype=np.uint8)  # [T, H, W, 3]
    for ch in range(3):
        video[..., ch] = planes[ch]

    # how much of each object the later ones leave uncovered
    uncovered = np.ones((frames, height, width), dtype=np.float32)
    fractions = [None] * len(alphas)
    for i in range(len(alphas) - 1, -1, -1):
        rows, cols = windows[i]
        area = alphas[i].sum(axis=(1, 2))  # [T]
        seen = (alphas[i] * uncovered[:, rows, cols]).sum(axis=(1, 2))
        fractions[i] = np.where(area > 0, seen / np.maximum(area, 1e-9), 0.0).astype(np.float64)
        uncovered[:, rows, cols] *= 1.0 - alphas[i]

    tracks = [ObjectTrack(index=i, shape=o.shape, color=o.color, motion=o.motion, center=tr.center,
                          half_extent=tr.half_extent, velocity=tr.velocity, visible=tr.visible,
                          visible_fraction=fractions[i])
              for i, (o, tr) in enumerate(zip(spec.objects, trajs))]
    events = sorted((e for tr in trajs for e in tr.events), key=lambda e: (e.time, e.object))
    return video, Annotations(height=height, width=width, frames=frames, objects=tracks, events=events)
