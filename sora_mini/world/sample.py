"""Sample random scene specs that the evaluator can read back from pixels.

``sample_spec(seed)`` is deterministic for a seed: 1-3 objects with distinct colours, each in its
own start region with a small offset. It rejects scenes that would be ambiguous on screen:
objects start apart (their boxes do not touch, at any aspect ratio), every object's largest
extent starts inside the frame, a moving object moves away from the walls it starts next to
(before and after a turn), and a falling object starts in the top or middle row.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from sora_mini.world.physics import max_half_extent
from sora_mini.world.spec import (
    BACKGROUNDS,
    DIRECTIONS,
    EVENT_TIMES,
    MAX_OBJECTS,
    MOTIONS,
    PALETTE,
    REGIONS,
    SHAPES,
    SIZES,
    SPEEDS,
    ObjectSpec,
    SceneSpec,
)

MAX_OFFSET = 0.1  # start jitter inside a region, as a fraction of the frame (a region is 1/3)
GAP = 0.03  # free space between two objects' start boxes, as a fraction of the shorter side
EDGE = 0.01  # free space between a start box and the frame edge
_TRIES = 40  # placements tried per object before the scene settles for fewer objects


def spec_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th spec of a dataset seeded ``seed``: a 32-bit hash of the pair
    (the splitmix64 finaliser), so neighbouring indexes and seeds give unrelated scenes."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(index) * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) >> 32


def _offset_range(centre: float, r_max: float) -> tuple[float, float]:
    """Offsets that keep the box of half-extent ``r_max`` inside the frame on every aspect ratio.

    The worst case is this axis being the shorter side (extent ``r_max`` in frame fractions).
    """
    return max(-MAX_OFFSET, r_max + EDGE - centre), min(MAX_OFFSET, 1 - r_max - EDGE - centre)


def _moves_away_from_walls(region: str, direction: str) -> bool:
    """False if ``direction`` heads straight into a wall the region touches (an instant bounce)."""
    cx, cy = REGIONS[region]
    dx, dy = DIRECTIONS[direction]
    return not ((dx < 0 and cx < 0.3) or (dx > 0 and cx > 0.7)
                or (dy < 0 and cy < 0.3) or (dy > 0 and cy > 0.7))


def _mirror_images(direction: str) -> set[str]:
    """``direction`` and its reflections at vertical and horizontal walls (what bounces can make of it)."""
    dx, dy = DIRECTIONS[direction]
    flips = {(sx * dx, sy * dy) for sx in (1, -1) for sy in (1, -1)}
    return {d for d, v in DIRECTIONS.items() if any(abs(v[0] - f[0]) + abs(v[1] - f[1]) < 1e-6 for f in flips)}


def _apart(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """Boxes ``(x, y, r)`` (fractions) do not touch in a square frame, hence in any frame."""
    need = a[2] + b[2] + GAP
    return abs(a[0] - b[0]) >= need or abs(a[1] - b[1]) >= need


def _pick(rng: random.Random, options) -> str:
    return rng.choice(options if isinstance(options, (list, tuple)) else list(options))


@functools.cache
def _placements(size: str, motion: str) -> tuple[tuple[str, tuple[float, float], tuple[float, float]], ...]:
    """Regions where an object of this size and motion fits, with their offset ranges (x, y)."""
    r_max = max_half_extent(ObjectSpec("circle", "red", size=size, motion=motion))
    out = []
    for region, (cx, cy) in REGIONS.items():
        xr, yr = _offset_range(cx, r_max), _offset_range(cy, r_max)
        if xr[0] <= xr[1] and yr[0] <= yr[1] and not (motion == "fall" and cy > 0.7):
            out.append((region, xr, yr))
    return tuple(out)


def _sample_object(rng, color: str, motions, taken: list[tuple[float, float, float]],
                   used_regions: set[str]) -> ObjectSpec | None:
    for _ in range(_TRIES):
        motion, shape, size = _pick(rng, motions), _pick(rng, SHAPES), _pick(rng, SIZES)
        places = [p for p in _placements(size, motion) if p[0] not in used_regions]
        if not places:
            continue
        region, (x_lo, x_hi), (y_lo, y_hi) = _pick(rng, places)
        obj = ObjectSpec(shape=shape, color=color, size=size, region=region, motion=motion)
        obj.offset = (round(rng.uniform(x_lo, x_hi), 4), round(rng.uniform(y_lo, y_hi), 4))
        x, y = obj.start_xy
        r_max = max_half_extent(obj)
        if not all(_apart((x, y, r_max), other) for other in taken):
            continue
        if motion in ("move", "turn"):
            obj.direction = _pick(rng, [d for d in DIRECTIONS if _moves_away_from_walls(region, d)])
            obj.speed = _pick(rng, SPEEDS)
            if motion == "turn":
                # the second direction also leads away from the start walls (a turn straight into
                # a wall would be an instant bounce, read as the opposite direction)
                # ... and is never a mirror image of the first: bounces before the turn flip the
                # heading to one of its mirror images (which depends on the size and duration), and
                # a turn onto the current heading or a mirror of it reads as nothing or a bounce
                mirrors = _mirror_images(obj.direction)
                obj.direction2 = _pick(rng, [d for d in DIRECTIONS if d not in mirrors
                                             and _moves_away_from_walls(region, d)])
        if motion in ("appear", "disappear", "turn"):
            obj.event_time = _pick(rng, EVENT_TIMES)
        taken.append((x, y, r_max))
        used_regions.add(region)
        return obj.validate()
    return None


def sample_spec(seed: int, *, max_objects: int = MAX_OBJECTS, motions=None,
                min_objects: int = 1) -> SceneSpec:
    """A random scene, the same for the same arguments.

    ``motions``: the motions to draw from (default: all of ``MOTIONS``); ``min_objects`` /
    ``max_objects``: how many objects (1-3). In the rare case that an object finds no free place
    after many tries the scene keeps the objects already placed (never fewer than one).
    """
    if not 1 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(f"need 1 <= min_objects ({min_objects}) <= max_objects ({max_objects}) "
                         f"<= {MAX_OBJECTS}")
    motions = tuple(MOTIONS if motions is None else motions)
    bad = [m for m in motions if m not in MOTIONS]
    if bad or not motions:
        raise ValueError(f"unknown motions {bad or '(none given)'}; allowed: {', '.join(MOTIONS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    rng = random.Random(int(seed))  # Python's Mersenne Twister: stable across versions, fast per draw
    n = rng.randint(min_objects, max_objects)
    colors = rng.sample(list(PALETTE), n)
    background = _pick(rng, BACKGROUNDS)
    taken: list[tuple[float, float, float]] = []
    used: set[str] = set()
    objects = [o for c in colors if (o := _sample_object(rng, c, motions, taken, used)) is not None]
    return SceneSpec(objects=objects, background=background, seed=int(seed)).validate()


def sample_specs(n: int, seed: int = 0, **kw) -> list[SceneSpec]:
    """``n`` specs: the ``i``-th is ``sample_spec(spec_seed(seed, i), **kw)`` (what WorldDataset uses)."""
    return [sample_spec(spec_seed(seed, i), **kw) for i in range(n)]
