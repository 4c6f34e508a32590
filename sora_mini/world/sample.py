"""Sample random scene specs that the evaluator can read back from pixels.

``sample_spec(seed)`` is deterministic for a seed: 1-3 objects with distinct colours, each in its
own start region with a small offset, placed by the one rule of ``sora_mini.world.placement``:
objects start apart (their boxes do not touch, at any aspect ratio), every object's largest
extent starts inside the frame, a moving object moves away from the walls it starts next to
(before and after a turn), and a falling object starts in the top or middle row.

``sample_spec(seed, fix={"color": "red", "motion": "move", "direction": "right"})`` fixes
attributes of the first object (``fix=[{...}, {...}]``: of each object in turn) and draws every
other attribute consistently with them (a fixed direction gets a start with room to move that
way, a fixed event time a motion that has one). Without ``fix`` the specs are exactly those of
earlier versions for the same seed: every figure of the project depends on them.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from sora_mini.world.placement import (
    MAX_OFFSET,
    MOVING,
    apart,
    draw_offset,
    forced_place,
    free_directions,
    mirror_images,
    places,
    start_box,
)
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
    VOCABULARY,
    ObjectSpec,
    SceneSpec,
)

_TRIES = 40  # placements tried per object before the scene settles for fewer objects
_SCENE_TRIES = 20  # scenes drawn before a fix that finds no room is an error
FIXABLE = ("shape", "color", "size", "region", "motion", "direction", "speed", "direction2",
           "event_time", "offset")
_USES = {"direction": MOVING, "speed": MOVING, "direction2": ("turn",),
         "event_time": ("appear", "disappear", "turn")}  # attribute -> the motions that have it


def spec_seed(seed: int, index: int) -> int:
    """The seed of the ``index``-th spec of a dataset seeded ``seed``: a 32-bit hash of the pair
    (the splitmix64 finaliser), so neighbouring indexes and seeds give unrelated scenes."""
    mask = (1 << 64) - 1
    x = (int(seed) * 0x9E3779B97F4A7C15 + int(index) * 0xD1B54A32D192ED03 + 0x632BE59BD9B4E019) & mask
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
    return (x ^ (x >> 31)) >> 32


def _pick(rng: random.Random, options) -> str:
    return rng.choice(options if isinstance(options, (list, tuple)) else list(options))


# ----------------------------------------------------------------------------------------------
# Fixed attributes
# ----------------------------------------------------------------------------------------------
def _fits(size: str, motion: str, f: dict, strict: bool) -> bool:
    return bool(places(size, motion, f.get("direction"), f.get("direction2"), f.get("region"),
                       f.get("offset") if strict else None))


def _fix_key(f: dict) -> tuple:
    """Fixed attributes as a hashable cache key (an offset given as a list becomes a tuple)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in f.items()))


def _motions_for(motions, f: dict, strict: bool) -> tuple[str, ...]:
    """The motions an object with fixed attributes ``f`` draws from (``motions`` when nothing is fixed)."""
    return _motions_for_cached(tuple(motions), _fix_key(f), strict)


@functools.lru_cache(maxsize=1024)  # asked once per object: the answers repeat
def _motions_for_cached(motions: tuple, fixed: tuple, strict: bool) -> tuple[str, ...]:
    f = dict(fixed)
    needs = [a for a in f if a in _USES]
    pool = (f["motion"],) if "motion" in f else tuple(m for m in motions if all(m in _USES[a] for a in needs))
    sizes = (f["size"],) if "size" in f else tuple(SIZES)
    ok = tuple(m for m in pool if any(_fits(s, m, f, strict) for s in sizes))
    return ok if ok or strict else pool


def _sizes_for(motion: str, f: dict, strict: bool) -> tuple[str, ...]:
    return _sizes_for_cached(motion, _fix_key(f), strict)


@functools.lru_cache(maxsize=1024)  # asked for every try of every object: the answers repeat
def _sizes_for_cached(motion: str, fixed: tuple, strict: bool) -> tuple[str, ...]:
    f = dict(fixed)
    ok = tuple(s for s in SIZES if _fits(s, motion, f, strict))
    return ok if ok or strict else tuple(SIZES)


def _check_object_fix(i: int, f: dict, motions, strict: bool) -> dict:
    where = f"fix for object {i}"
    f = {k: v for k, v in f.items() if v is not None}  # None = not fixed
    for k, v in f.items():
        if k not in FIXABLE:
            raise ValueError(f"{where}: unknown attribute {k!r}; allowed: {', '.join(FIXABLE)}")
        if k == "offset":
            try:
                f[k] = tuple(float(x) for x in v)
            except (TypeError, ValueError):
                f[k] = ()
            if len(f[k]) != 2 or any(abs(x) > MAX_OFFSET for x in f[k]):
                raise ValueError(f"{where}: offset {v!r} must be two numbers within +-{MAX_OFFSET}")
        elif v not in VOCABULARY[k]:
            raise ValueError(f"{where}: unknown {k} {v!r}; allowed: {', '.join(VOCABULARY[k])}")
    needs = [a for a in f if a in _USES]
    if "motion" in f:
        for a in needs:
            if f["motion"] not in _USES[a]:
                raise ValueError(f"{where}: {a} is only for motions {', '.join(_USES[a])}, "
                                 f"not {f['motion']!r}")
    elif needs and not _motions_for(motions, {a: f[a] for a in needs}, False):
        need = [m for m in MOTIONS if all(m in _USES[a] for a in needs)]
        raise ValueError(f"{where}: {', '.join(needs)} needs motion {' or '.join(need)}, "
                         f"which motions={list(motions)} leaves out")
    d, d2 = f.get("direction"), f.get("direction2")
    if d is not None and d == d2:
        raise ValueError(f"{where}: a turn needs two different directions, got {d!r} twice")
    if strict and d is not None and d2 is not None and d2 in mirror_images(d):
        raise ValueError(f"{where}: a turn from {d!r} to {d2!r} reads as a bounce; direction2 "
                         f"must not be a mirror image of direction ({', '.join(sorted(mirror_images(d)))})")
    if strict and not _motions_for(motions, f, strict):
        loose = {k: v for k, v in f.items() if k not in ("region", "offset")}
        regions = sorted({p[0] for m in _motions_for(motions, loose, True)
                          for s in ((f["size"],) if "size" in f else SIZES)
                          for p in places(s, m, d, d2)}, key=list(REGIONS).index)
        raise ValueError(f"{where}: no valid start for {f} (inside the frame, with room to move "
                         f"or fall); such an object can start at: {', '.join(regions) or '(nowhere)'}")
    return f


def _check_fix(fix, max_objects: int, motions, strict: bool) -> list[dict]:
    """``fix`` as one checked dict per fixed object (``[]`` for ``None``)."""
    if fix is None:
        return []
    fixes = [fix] if isinstance(fix, dict) else fix
    if not isinstance(fixes, (list, tuple)) or not all(isinstance(f, dict) for f in fixes):
        raise ValueError("fix is a dict {attribute: value} for the first object, or a list of such "
                         "dicts, one per object (e.g. fix={'color': 'red', 'motion': 'move'}); "
                         f"got {fix!r}")
    if len(fixes) > max_objects:
        raise ValueError(f"fix describes {len(fixes)} objects but max_objects is {max_objects}")
    fixes = [_check_object_fix(i, f, motions, strict) for i, f in enumerate(fixes)]
    for key in ("color", "region") if strict else ("color",):
        values = [f[key] for f in fixes if key in f]
        if len(set(values)) != len(values):
            raise ValueError(f"fix gives two objects the same {key} ({values}); the objects of a "
                             f"scene have distinct {key}s")
    return fixes


def _colors(drawn: list[str], fixes: list[dict]) -> list[str]:
    """The drawn colours with the fixed ones put in; an object whose colour a fix took gets a free one."""
    out = [f.get("color") for f in fixes]
    if not any(out):
        return drawn
    out = [c if c is not None else (d if d not in out else None) for c, d in zip(out, drawn)]
    spare = list(dict.fromkeys(c for c in [*drawn, *PALETTE] if c not in out))
    return [c if c is not None else spare.pop(0) for c in out]


# ----------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------
def _place(rng, size: str, motion: str, f: dict, used: set[str], reserved: set[str], mode: str):
    """A (region, x range, y range) for the object, or None when no free region is left.

    ``mode``: ``"strict"`` every rule; ``"keep"`` also where the fixed attributes break a rule
    (then the fixed region, or any, with its inmost offsets); ``"force"`` also a taken region.
    """
    ok = places(size, motion, f.get("direction"), f.get("direction2"), f.get("region"),
                f.get("offset") if mode == "strict" else None)
    if not ok and mode != "strict":
        regions = [f["region"]] if "region" in f else list(REGIONS)
        ok = [forced_place(r, size, motion) for r in regions]
    free = [p for p in ok if p[0] not in used and p[0] not in reserved]
    if not free and mode == "force":
        free = [p for p in ok if p[0] not in used] or ok
    return _pick(rng, free) if free else None


def _sample_object(rng, color: str, motions, f: dict, taken: list[tuple[float, float, float]],
                   used: set[str], reserved: set[str], mode: str) -> ObjectSpec | None:
    """One object with the fixed attributes ``f`` (each other attribute drawn, then the fixed ones
    put in, so a fix changes as little else as the rules allow); None if it finds no free place
    apart from the others (``mode="force"``: then it takes the last place tried)."""
    strict = mode == "strict"
    draw_motions = motions if "motion" in f else _motions_for(motions, f, strict)
    last = None
    for _ in range(_TRIES):
        motion = f.get("motion", _pick(rng, draw_motions))
        shape = f.get("shape", _pick(rng, SHAPES))
        size = f.get("size", _pick(rng, SIZES if "size" in f else _sizes_for(motion, f, strict)))
        place = _place(rng, size, motion, f, used, reserved, mode)
        if place is None:
            continue
        region, xr, yr = place
        offset = draw_offset(rng, xr, yr)
        obj = ObjectSpec(shape=shape, color=color, size=size, region=region, motion=motion,
                         offset=f.get("offset", offset))
        last = obj, start_box(obj)
        if all(apart(last[1], other) for other in taken):
            break
    else:
        if mode != "force" or last is None:
            return None
    obj, box = last
    motion, region = obj.motion, obj.region
    if motion in MOVING:
        d2 = f.get("direction2")
        options = free_directions(region, not_mirroring=d2) or [d for d in DIRECTIONS if d != d2]
        obj.direction = f.get("direction", _pick(rng, options))
        obj.speed = f.get("speed", _pick(rng, SPEEDS))
        if motion == "turn":
            # the second direction also leads away from the start walls (a turn straight into
            # a wall would be an instant bounce, read as the opposite direction)
            # ... and is never a mirror image of the first: bounces before the turn flip the
            # heading to one of its mirror images (which depends on the size and duration), and
            # a turn onto the current heading or a mirror of it reads as nothing or a bounce
            options = free_directions(region, not_mirroring=obj.direction) \
                or [d for d in DIRECTIONS if d != obj.direction]
            obj.direction2 = f.get("direction2", _pick(rng, options))
    if motion in ("appear", "disappear", "turn"):
        obj.event_time = f.get("event_time", _pick(rng, EVENT_TIMES))
    taken.append(box)
    used.add(region)
    return obj.validate()


def check_motions(motions) -> tuple[str, ...]:
    """``motions`` as a tuple (None: all of ``MOTIONS``), or a ``ValueError`` naming the unknown ones."""
    motions = tuple(MOTIONS if motions is None else motions)
    bad = [m for m in motions if m not in MOTIONS]
    if bad or not motions:
        raise ValueError(f"unknown motions {bad or '(none given)'}; allowed: {', '.join(MOTIONS)}")
    return motions


def sample_spec(seed: int, *, max_objects: int = MAX_OBJECTS, motions=None, min_objects: int = 1,
                fix=None, strict: bool = True) -> SceneSpec:
    """A random scene, the same for the same arguments.

    ``motions``: the motions to draw from (default: all of ``MOTIONS``); ``min_objects`` /
    ``max_objects``: how many objects (1-3). In the rare case that an object finds no free place
    after many tries the scene keeps the objects already placed (never fewer than one).
    ``fix``: attributes (keys of ``VOCABULARY`` but ``background``, and ``offset``) -> values for
    the first object (a dict) or for the first ``len(fix)`` objects (a list of dicts, ``{}`` for
    an object with nothing fixed; the scene then has at least that many, never dropped); every
    other attribute is drawn consistently with them, and a fix that no valid scene has is an error
    naming the values that work. ``strict=False`` keeps the fixed attributes even where they break
    a readability rule (two objects in one region, a motion straight into a wall; the rest still
    follows the rules) and never fails or drops an object, letting objects overlap only when they
    find no room apart: what ``CaptionSpec.to_scene_spec`` uses.
    """
    if not 1 <= min_objects <= max_objects <= MAX_OBJECTS:
        raise ValueError(f"need 1 <= min_objects ({min_objects}) <= max_objects ({max_objects}) "
                         f"<= {MAX_OBJECTS}")
    motions = check_motions(motions)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    fixes = _check_fix(fix, max_objects, motions, strict)
    # a fixed object can find the frame crowded by the objects before it: then the scene is drawn
    # again from derived seeds (never without a fix, whose scenes stay those of earlier versions);
    # strict=False ends with a scene that lets objects overlap rather than fail
    regions = [f["region"] for f in fixes if "region" in f]
    modes = ["strict"] * (_SCENE_TRIES if fixes else 1) if strict else \
        ["keep"] * (_SCENE_TRIES if len(set(regions)) == len(regions) else 0) + ["force"]
    for attempt, mode in enumerate(modes):
        rng = random.Random(int(seed) if attempt in (0, len(modes) - 1) else spec_seed(int(seed), attempt))
        spec = _draw_scene(rng, min_objects, max_objects, motions, fixes, mode)
        if spec is not None:
            spec.seed = int(seed)
            return spec.validate()
    raise ValueError(f"found no scene with the fixed objects {fixes} apart in {_SCENE_TRIES} "
                     "tries; fix fewer or smaller objects, or ask for fewer objects (max_objects)")


def _draw_scene(rng, min_objects: int, max_objects: int, motions, fixes: list[dict],
                mode: str) -> SceneSpec | None:
    """One draw of a scene (Python's Mersenne Twister: stable across versions, fast per draw);
    None if one of the fixed objects found no place."""
    n_fixed = len(fixes)  # these objects must be placed (an unfixed one may be dropped)
    n = rng.randint(max(min_objects, n_fixed), max_objects)
    fixes = fixes + [{}] * (n - n_fixed)
    colors = _colors(rng.sample(list(PALETTE), n), fixes)
    background = _pick(rng, BACKGROUNDS)
    taken: list[tuple[float, float, float]] = []
    used: set[str] = set()
    objects = []
    for i, (color, f) in enumerate(zip(colors, fixes)):
        reserved = {g["region"] for j, g in enumerate(fixes) if j != i and "region" in g}
        obj = _sample_object(rng, color, motions, f, taken, used, reserved, mode)
        if obj is None and i < n_fixed:
            return None
        if obj is not None:
            objects.append(obj)
    return SceneSpec(objects=objects, background=background)


def sample_specs(n: int, seed: int = 0, **kw) -> list[SceneSpec]:
    """``n`` specs: the ``i``-th is ``sample_spec(spec_seed(seed, i), **kw)`` (what WorldDataset uses)."""
    return [sample_spec(spec_seed(seed, i), **kw) for i in range(n)]
