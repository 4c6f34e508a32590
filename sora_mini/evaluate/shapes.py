"""Fit a shape template (circle, square, triangle) to an object's coverage, frame by frame.

Shapes: coverage ``a`` and comparable-pixel mask ``known`` are ``[T, H, W]``; centres ``[T, 2]``
(x, y box centre, pixels), half-extents ``[T]``. The templates are the world's anti-aliased shapes
(``sora_mini.world.render.coverage``): a circle of radius r, a square of side 2r, a triangle with
its apex r above the box centre and a 2r base r below it.

* ``fit_shape``: match the template's centroid and area to the observed ones over ``known``
  pixels (exact for a whole shape, a few iterations for a partly hidden one);
* ``refine``: Gauss-Newton on the centre (and optionally the size) for partly hidden frames,
  minimising the squared template misfit over the pixels that can be compared.
"""

from __future__ import annotations

import numpy as np

from sora_mini.world.render import coverage

SHAPE_AREA = {"circle": np.pi, "square": 4.0, "triangle": 2.0}  # area / half_extent^2
CENTROID_DY = {"circle": 0.0, "square": 0.0, "triangle": 1 / 3}  # (centroid - box centre).y / r


def _centroid(m: np.ndarray) -> np.ndarray:
    """[T, H, W] weights -> [T, 2] weighted mean (x, y) of pixel centres."""
    _, H, W = m.shape
    mass = np.maximum(m.sum(axis=(1, 2)), 1e-6)
    xs, ys = np.arange(W) + 0.5, np.arange(H) + 0.5
    return np.stack([(m.sum(1) * xs).sum(-1), (m.sum(2) * ys).sum(-1)], -1) / mass[:, None]


def fit_shape(
    shape: str,
    a: np.ndarray,
    known: np.ndarray,
    present: np.ndarray,
    r_fixed=None,
    iterations: int = 5,
):
    """Place ``shape`` on every frame -> (centre [T, 2], r [T], misfit [T], visible share [T]).

    ``misfit`` is the L1 template error over ``known`` pixels per unit of observed coverage;
    the visible share is the part of the template on comparable pixels (not hidden, in frame).
    Frames not ``present`` get nan.
    """
    T, H, W = a.shape
    mass = np.maximum(a.sum(axis=(1, 2)), 1e-6)  # [T]
    m_obs = _centroid(a)
    r = (
        np.sqrt(mass / SHAPE_AREA[shape])
        if r_fixed is None
        else np.array(r_fixed, dtype=np.float64)
    )
    center = m_obs - np.stack([np.zeros(T), CENTROID_DY[shape] * r], -1)
    for _ in range(iterations):
        tpl = coverage(shape, center, r, H, W) * known  # [T, H, W] the part we can compare
        center = center + (m_obs - _centroid(tpl))
        if r_fixed is None:
            r = r * np.clip(np.sqrt(mass / np.maximum(tpl.sum(axis=(1, 2)), 1e-6)), 0.8, 1.25)
    tpl = coverage(shape, center, r, H, W)
    misfit = (np.abs(a - tpl) * known).sum(axis=(1, 2)) / mass
    vis = (tpl * known).sum(axis=(1, 2)) / np.maximum(SHAPE_AREA[shape] * r**2, 1e-6)
    bad = ~present
    center[bad], r[bad], misfit[bad], vis[bad] = np.nan, np.nan, np.nan, 0.0
    return center, r, misfit, np.clip(vis, 0.0, 1.0)


def refine(
    shape: str, a, known, center, r, frames, fit_size: bool = False, steps: int = 8, h: float = 0.05
):
    """Gauss-Newton on the centres (with ``fit_size`` also the half-extents) of ``frames`` [T],
    minimising the squared template misfit over ``known`` pixels -> (centre [T, 2], r [T])."""
    center, r = center.copy(), np.array(r, dtype=np.float64)
    sel = np.flatnonzero(frames & np.isfinite(center[:, 0]) & np.isfinite(r))
    if len(sel) == 0:
        return center, r
    _, H, W = a.shape
    p = np.concatenate([center[sel], r[sel, None]], 1)  # [n, 3] (x, y, r)
    obs, k = a[sel], known[sel].astype(np.float32)
    m = 3 if fit_size else 2
    for _ in range(steps):
        t0 = coverage(shape, p[:, :2], p[:, 2], H, W)
        jac = []
        for d in range(m):  # finite-difference derivative of the template per parameter
            q = p.copy()
            q[:, d] += h
            jac.append((coverage(shape, q[:, :2], q[:, 2], H, W) - t0) / h * k)  # [n, H, W]
        res = (obs - t0) * k
        jtj = np.array(
            [[(jac[u] * jac[w]).sum((1, 2)) for w in range(m)] for u in range(m)]
        )  # [m, m, n]
        jtr = np.stack([(jac[u] * res).sum((1, 2)) for u in range(m)], -1)  # [n, m]
        step = np.linalg.solve(jtj.transpose(2, 0, 1) + 1e-3 * np.eye(m), jtr[..., None])[..., 0]
        p[:, :m] += np.clip(step, -1.0, 1.0)
        p[:, 2] = np.maximum(p[:, 2], 0.5)
    center[sel], r[sel] = p[:, :2], p[:, 2]
    return center, r


def visible_share(shape: str, known, center, r) -> np.ndarray:
    """[T] share of the template at ``center``, ``r`` that lies on comparable pixels."""
    _, H, W = known.shape
    tpl = coverage(shape, np.nan_to_num(center), np.nan_to_num(r), H, W)
    return (tpl * known).sum(axis=(1, 2)) / np.maximum(
        SHAPE_AREA[shape] * np.nan_to_num(r) ** 2, 1e-6
    )


def robust_line(t: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares line ``y = y0 + slope t``, refitted without far-off points -> (slope, y0)."""
    if len(t) < 2:
        return 0.0, float(y[0])
    keep = np.ones(len(t), dtype=bool)
    for _ in range(2):
        slope, y0 = np.polyfit(t[keep], y[keep], 1)
        res = np.abs(y - (y0 + slope * t))
        keep = res <= max(3 * np.median(res), 0.02 * np.median(y))
        if keep.sum() < 2:
            break
    return float(slope), float(y0)
