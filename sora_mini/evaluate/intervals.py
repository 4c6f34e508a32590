"""Spread, so that a comparison names a winner only when the gap exceeds it.

``wilson_interval(k, n)`` for a rate (Wilson 1927: inside [0, 1], not empty at k = n),
``bootstrap_interval(values)`` for a mean over videos, ``paired_gap(a, b)`` for two models on the
same videos, ``mean_std`` / ``bars_separate`` for figures repeated over seeds. Used by the studies
and by the notebooks' tables and error bars (``sora_mini.viz``).
"""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(k: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate ``k / n`` (95 % for ``z = 1.96``) -> (low, high).

    Unlike ``p +- z sqrt(p (1 - p) / n)`` it stays inside [0, 1] and is not empty at ``k = n``;
    with no trials (``n = 0``) it is the whole of (0, 1).
    """
    if n <= 0:
        return (0.0, 1.0)
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # exact ends: all wrong -> low 0, all right -> high 1 (no round-off)
    return (0.0 if k == 0 else max(0.0, centre - half), 1.0 if k == n else min(1.0, centre + half))


def rate_interval(rate: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """``wilson_interval`` for a rate already divided by ``n``."""
    return wilson_interval(round(rate * n), n, z)


def format_rate(rate: float, n: int) -> str:
    """``"0.88 (0.64-0.97)"``: a rate of ``n`` trials with its Wilson 95 % interval."""
    lo, hi = rate_interval(rate, n)
    return f"{rate:.2f} ({lo:.2f}-{hi:.2f})"


def intervals_overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Do two intervals (lo, hi) overlap? If they do, the difference is within the spread."""
    return a[0] <= b[1] and b[0] <= a[1]


def bars_separate(a, b) -> bool:
    """Do the mean +- std bars of two sets of measurements (e.g. one per seed) not overlap?"""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return not intervals_overlap((a.mean() - a.std(), a.mean() + a.std()), (b.mean() - b.std(), b.mean() + b.std()))


def mean_std(values, scale: float = 1.0, digits: int = 1) -> str:
    """``"mean ± std"`` of repeated figures (seeds, draws, timing repeats), each times ``scale``."""
    arr = np.asarray(values, dtype=float) * scale
    std = arr.std(ddof=1) if arr.size > 1 else 0.0
    return f"{arr.mean():.{digits}f} ± {std:.{digits}f}"


def bootstrap_interval(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0,
                       weights=None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one number per held-out video),
    resampling videos; ``weights`` (e.g. frames per video) makes it the interval of the weighted mean."""
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    pick = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))  # [n_boot, videos]
    means = (v[pick] * w[pick]).sum(axis=1) / w[pick].sum(axis=1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


def paired_gap(a, b, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """``mean(a - b)`` over paired values (two models on the same videos) with its bootstrap interval,
    and the verdict: ``"a"`` / ``"b"`` is lower when the interval excludes 0, else ``"within the spread"``."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    lo, hi = bootstrap_interval(d, level, n_boot, seed)
    lower = "a" if hi < 0 else "b" if lo > 0 else "within the spread"
    return {"gap": float(d.mean()), "low": lo, "high": hi, "lower": lower}
