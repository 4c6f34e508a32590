"""Where an object may start: the one placement rule of the sampler and the caption filler.

A start is a region of the 3x3 grid (``REGIONS``) plus a small offset inside it, as fractions of
the frame (x of the width, y of the height). A start is valid when

* the object's largest extent over the video (a growing object's final size) stays inside the
  frame at every aspect ratio, ``EDGE`` away from the border (so a large growing object fits only
  in the centre),
* a falling object starts in the top or middle row (it needs room to fall),
* a moving or turning object heads away from every wall its region touches, before and after the
  turn (else its first step is an instant bounce, read as the opposite direction), and a turn's
  second direction is not a mirror image of the first (bounces make those of it),

and the objects of one scene start in distinct regions with boxes that do not touch (``apart``).

``start_regions(motion, direction, size)`` -> the regions such an object may start in;
``valid_start(motion, direction, size, region, *, seed)`` -> one ``Start(region, offset)`` drawn
from them (``start.xy`` is the centre); ``free_directions(region)`` -> the directions with room.
``sample_spec`` draws every start through the same functions.
"""

from __future__ import annotations

import functools
import random
from typing import NamedTuple

from sora_mini.world.physics import max_half_extent
from sora_mini.world.spec import DIRECTIONS, MOTIONS, REGIONS, SIZES, ObjectSpec, _check

MAX_OFFSET = 0.1  # start jitter inside a region, as a fraction of the frame (a region is 1/3)
GAP = 0.03  # free space between two objects' start boxes, as a fraction of the shorter side
EDGE = 0.01  # free space between a start box and the frame edge
TRIES = 40  # offsets tried before giving up on keeping an object apart from the others
MOVING = ("move", "turn")
_ROUND = 1e-4  # offsets are stored rounded to 4 decimals, so they may pass a range's end by this

Range = tuple[float, float]
Place = tuple[str, Range, Range]  # region, offset range x, offset range y


class Start(NamedTuple):
    """A start: ``region`` (a key of ``REGIONS``) and ``offset`` (dx, dy) inside it, fractions."""

    region: str
    offset: tuple[float, float]

    @property
    def xy(self) -> tuple[float, float]:
        """The start centre as fractions (x of the width, y of the height)."""
        cx, cy = REGIONS[self.region]
        return cx + self.offset[0], cy + self.offset[1]


def _offset_range(centre: float, r_max: float) -> Range:
    """Offsets that keep the box of half-extent ``r_max`` inside the frame on every aspect ratio.

    The worst case is this axis being the shorter side (extent ``r_max`` in frame fractions).
    """
    return max(-MAX_OFFSET, r_max + EDGE - centre), min(MAX_OFFSET, 1 - r_max - EDGE - centre)


def moves_away_from_walls(region: str, direction: str) -> bool:
    """False if ``direction`` heads straight into a wall the region touches (an instant bounce)."""
    cx, cy = REGIONS[region]
    dx, dy = DIRECTIONS[direction]
    return not ((dx < 0 and cx < 0.3) or (dx > 0 and cx > 0.7)
                or (dy < 0 and cy < 0.3) or (dy > 0 and cy > 0.7))


def mirror_images(direction: str) -> set[str]:
    """``direction`` and its reflections at vertical and horizontal walls (what bounces can make of it)."""
    dx, dy = DIRECTIONS[direction]
    flips = {(sx * dx, sy * dy) for sx in (1, -1) for sy in (1, -1)}
    return {d for d, v in DIRECTIONS.items() if any(abs(v[0] - f[0]) + abs(v[1] - f[1]) < 1e-6 for f in flips)}


def free_directions(region: str, *, not_mirroring: str | None = None) -> tuple[str, ...]:
    """The directions an object starting in ``region`` has room to move in (``DIRECTIONS`` order).

    ``not_mirroring``: leave out that direction and its mirror images (a turn's other direction).
    """
    _check(region, REGIONS, "region")
    mirrors = mirror_images(not_mirroring) if not_mirroring is not None else set()
    return tuple(d for d in DIRECTIONS if d not in mirrors and moves_away_from_walls(region, d))


def apart(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """Boxes ``(x, y, r)`` (fractions) do not touch in a square frame, hence in any frame."""
    need = a[2] + b[2] + GAP
    return abs(a[0] - b[0]) >= need or abs(a[1] - b[1]) >= need


def start_box(obj: ObjectSpec) -> tuple[float, float, float]:
    """``(x, y, r)``: the start centre and the largest half-extent of ``obj`` (for ``apart``)."""
    x, y = obj.start_xy
    return x, y, max_half_extent(obj)


@functools.cache
def _placements(size: str, motion: str) -> tuple[Place, ...]:
    """Regions where an object of this size and motion fits, with their offset ranges (x, y)."""
    r_max = max_half_extent(ObjectSpec("circle", "red", size=size, motion=motion))
    out = []
    for region, (cx, cy) in REGIONS.items():
        xr, yr = _offset_range(cx, r_max), _offset_range(cy, r_max)
        if xr[0] <= xr[1] and yr[0] <= yr[1] and not (motion == "fall" and cy > 0.7):
            out.append((region, xr, yr))
    return tuple(out)


@functools.lru_cache(maxsize=4096)  # the sampler asks the same few questions thousands of times
def places(size: str, motion: str, direction: str | None = None, direction2: str | None = None,
           region: str | None = None, offset: tuple[float, float] | None = None) -> tuple[Place, ...]:
    """The valid places (region, x range, y range) for an object; ``None`` = any value.

    A region is kept when the object fits there and, for a moving one, the given directions have
    room (an unknown direction of a turn must still have a choice left) and the ``offset`` lies in
    the region's range (up to the 4-decimal rounding of stored offsets). In ``REGIONS`` order.
    """
    out = []
    for place in _placements(size, motion):
        r, xr, yr = place
        if region is not None and r != region:
            continue
        if offset is not None and not (xr[0] - _ROUND <= offset[0] <= xr[1] + _ROUND
                                       and yr[0] - _ROUND <= offset[1] <= yr[1] + _ROUND):
            continue
        if motion in MOVING:
            if direction is not None and not moves_away_from_walls(r, direction):
                continue
            if direction2 is not None and not moves_away_from_walls(r, direction2):
                continue
            if motion == "turn" and direction is None and direction2 is not None \
                    and not free_directions(r, not_mirroring=direction2):
                continue
            if motion == "turn" and direction is not None and direction2 is None \
                    and not free_directions(r, not_mirroring=direction):
                continue
        out.append(place)
    return tuple(out)


def forced_place(region: str, size: str, motion: str) -> Place:
    """The offset ranges of ``region`` even where the object does not fit (then the inmost offset)."""
    r_max = max_half_extent(ObjectSpec("circle", "red", size=size, motion=motion))
    ranges = []
    for c in REGIONS[region]:
        lo, hi = _offset_range(c, r_max)
        if lo > hi:
            lo = hi = min(max((lo + hi) / 2, -MAX_OFFSET), MAX_OFFSET)
        ranges.append((lo, hi))
    return region, ranges[0], ranges[1]


def draw_offset(rng: random.Random, xr: Range, yr: Range) -> tuple[float, float]:
    """A uniform offset inside the ranges, rounded to 4 decimals (what a spec stores)."""
    return round(rng.uniform(*xr), 4), round(rng.uniform(*yr), 4)


def start_regions(motion: str = "still", direction: str | None = None, size: str = "small",
                  direction2: str | None = None) -> tuple[str, ...]:
    """The regions an object of this motion, direction(s) and size may start in (``REGIONS`` order)."""
    _check(motion, MOTIONS, "motion")
    _check(size, SIZES, "size")
    for d, what in ((direction, "direction"), (direction2, "direction2")):
        if d is not None:
            if motion not in MOVING:
                raise ValueError(f"{what} {d!r} is only for motions {', '.join(MOVING)}, not {motion!r}")
            _check(d, DIRECTIONS, what)
    if direction2 is not None and motion != "turn":
        raise ValueError(f"direction2 is only for motion 'turn', not {motion!r}")
    return tuple(p[0] for p in places(size, motion, direction, direction2))


def valid_start(motion: str = "still", direction: str | None = None, size: str = "small",
                region: str | None = None, *, seed: int, direction2: str | None = None,
                avoid=()) -> Start:
    """A start the sampler itself would accept, drawn from ``seed`` (the same for the same arguments).

    ``region``: keep the start in this region (an error names the regions that work if it has no
    valid start). ``avoid``: ``ObjectSpec`` s already in the scene; the start is in another region
    and its box does not touch theirs. Example: ``valid_start("move", "right", seed=0)`` is a start
    with room to move right; ``ObjectSpec(..., region=s.region, offset=s.offset)`` uses it.
    """
    regions = start_regions(motion, direction, size, direction2)
    if region is not None:
        _check(region, REGIONS, "region")
        if region not in regions:
            what = " ".join(w for w in (size, motion, direction, direction2) if w)
            raise ValueError(f"a {what} object has no valid start at the {region}; "
                             f"choose one of: {', '.join(regions)}")
    probe = ObjectSpec("circle", "red", size=size, motion=motion)
    boxes = [start_box(o) for o in avoid]
    taken = {o.region for o in avoid}
    options = [p for p in places(size, motion, direction, direction2, region) if p[0] not in taken]
    rng = random.Random(seed)
    for _ in range(TRIES if options else 0):
        where, xr, yr = rng.choice(options)
        start = Start(where, draw_offset(rng, xr, yr))
        probe.region, probe.offset = start
        if all(apart(start_box(probe), b) for b in boxes):
            return start
    raise ValueError(f"no free start for a {size} {motion} object apart from {len(boxes)} other(s) "
                     f"(regions taken: {sorted(taken)}); drop an object or give it a region of "
                     f"{', '.join(r for r in regions if r not in taken) or '(none left)'}")
