"""Prompt extension: a short user prompt -> a detailed caption in the training format.

DALL-E 3 and Sora train on detailed (re-)captions and extend short user prompts to match. Here the
grammar does it exactly: parse the prompt (``parse_caption``), keep every stated attribute, fill
each unstated one from the world's training distribution (uniform choices, as
``sora_mini.world.sample.sample_spec`` draws them, with the same placement rules: objects start
apart and inside the frame, moving objects head away from the walls they start next to, falling
ones start in the top or middle row), then write ``detailed_caption``. Deterministic for a seed.

    extend_prompt("a red circle moves right and a blue square", seed=0)
    -> "a small red circle starts at the left and moves right slowly. a large blue square starts
        at the top right and shrinks. the background is navy."

(A ``CaptionSpec.to_scene_spec(seed)`` that places objects validly is being written in
``sora_mini.world``; this minimal filler can then defer to it.)
"""

from __future__ import annotations

import random

from sora_mini.text.prompts import PromptError, check_prompts
from sora_mini.world.captions import CaptionError, CaptionObject, detailed_caption, parse_caption
from sora_mini.world.physics import max_half_extent
from sora_mini.world.sample import EDGE, GAP, MAX_OFFSET
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

_TRIES = 40  # draws per object before the scene starts over
_RESTARTS = 50  # scenes tried before the prompt is declared impossible to place


def _heads_away(region: str, direction: str) -> bool:
    cx, cy = REGIONS[region]
    dx, dy = DIRECTIONS[direction]
    return not ((dx < 0 and cx < 0.3) or (dx > 0 and cx > 0.7) or (dy < 0 and cy < 0.3) or (dy > 0 and cy > 0.7))


def _mirrors(direction: str) -> set[str]:
    dx, dy = DIRECTIONS[direction]
    flips = {(sx * dx, sy * dy) for sx in (1, -1) for sy in (1, -1)}
    return {d for d, v in DIRECTIONS.items() if any(abs(v[0] - a) + abs(v[1] - b) < 1e-6 for a, b in flips)}


def _offset_range(centre: float, r: float) -> tuple[float, float]:
    return max(-MAX_OFFSET, r + EDGE - centre), min(MAX_OFFSET, 1 - r - EDGE - centre)


def _apart(a, b) -> bool:
    need = a[2] + b[2] + GAP
    return abs(a[0] - b[0]) >= need or abs(a[1] - b[1]) >= need


def _suits(region: str, motion: str, o: CaptionObject) -> bool:
    """A falling object starts in the top or middle row; stated directions head away from walls."""
    if motion == "fall" and REGIONS[region][1] > 0.7:
        return False
    return all(_heads_away(region, d) for d in (o.direction, o.direction2) if d is not None)


def _draw(rng: random.Random, stated, options):
    return stated if stated is not None else rng.choice(list(options))


def _fill_object(rng: random.Random, o: CaptionObject, color: str, taken: list, used: set) -> ObjectSpec | None:
    """One object with ``o``'s stated attributes and the rest drawn; ``None`` if no place fits."""
    for _ in range(_TRIES):
        motion = _draw(rng, o.motion, MOTIONS)  # a stated direction or time comes with its motion
        shape, size = _draw(rng, o.shape, SHAPES), _draw(rng, o.size, SIZES)
        regions = [o.region] if o.region else [r for r in REGIONS if r not in used]
        obj = ObjectSpec(shape=shape, color=color, size=size, region="center", motion=motion)
        r = max_half_extent(obj)
        fits = []
        for region in regions:
            cx, cy = REGIONS[region]
            xr, yr = _offset_range(cx, r), _offset_range(cy, r)
            if xr[0] > xr[1] or yr[0] > yr[1]:
                continue
            if o.region is None and not _suits(region, motion, o):
                continue  # an unstated region is one where the stated motion reads clearly
            if o.motion is None and o.region is not None and not _suits(region, motion, o):
                continue  # an unstated motion is one that reads clearly from the stated region
            fits.append((region, xr, yr))
        if not fits:
            continue
        obj.region, xr, yr = rng.choice(fits)
        obj.offset = (round(rng.uniform(*xr), 4), round(rng.uniform(*yr), 4))
        x, y = obj.start_xy
        if not all(_apart((x, y, r), other) for other in taken):
            continue
        if motion in ("move", "turn"):
            away = [d for d in DIRECTIONS if _heads_away(obj.region, d)] or list(DIRECTIONS)
            obj.direction = _draw(rng, o.direction, away)
            obj.speed = _draw(rng, o.speed, SPEEDS)
            if motion == "turn":
                second = [d for d in away if d not in _mirrors(obj.direction)] or \
                         [d for d in DIRECTIONS if d != obj.direction]
                obj.direction2 = _draw(rng, o.direction2, second)
        if motion in ("appear", "disappear", "turn"):
            obj.event_time = _draw(rng, o.event_time, EVENT_TIMES)
        try:
            obj.validate()
        except ValueError as e:
            raise PromptError(f"the prompt asks for an impossible object: {e}") from e
        taken.append((x, y, r))
        used.add(obj.region)
        return obj
    return None


def extend_spec(prompt: str, seed: int = 0) -> SceneSpec:
    """The scene of ``prompt`` with every unstated attribute filled (deterministic for ``seed``)."""
    (prompt,) = check_prompts([prompt])
    try:
        said = parse_caption(prompt)
    except CaptionError as e:
        raise PromptError(str(e)) from e
    if len(said.objects) > MAX_OBJECTS:
        raise PromptError(f"the prompt describes {len(said.objects)} objects; a world scene holds at "
                          f"most {MAX_OBJECTS}")
    colors = [o.color for o in said.objects if o.color]
    if len(set(colors)) != len(colors):
        raise PromptError(f"two objects share a colour ({colors}); objects of one scene have distinct colours")
    rng = random.Random(f"extend/{seed}/{prompt}")
    free = [c for c in PALETTE if c not in colors]
    rng.shuffle(free)
    filled = [o.color or free.pop() for o in said.objects]
    # objects with a stated start region claim it first; the others go where there is room
    order = sorted(range(len(said.objects)), key=lambda i: said.objects[i].region is None)
    for _ in range(_RESTARTS):  # a scene whose early objects block the later ones starts over
        taken: list = []
        used: set = set()
        objects: dict[int, ObjectSpec] = {}
        for i in order:
            obj = _fill_object(rng, said.objects[i], filled[i], taken, used)
            if obj is None:
                break
            objects[i] = obj
        if len(objects) == len(order):
            break
    else:
        raise PromptError(f"cannot place the objects of {prompt!r} apart from each other (two objects "
                          "in one region, or shapes too large for their regions?); state other regions "
                          "or fewer objects")
    background = said.background or rng.choice(list(BACKGROUNDS))
    return SceneSpec([objects[i] for i in range(len(objects))], background=background, seed=seed).validate()


def extend_prompt(prompt: str, seed: int = 0) -> str:
    """``prompt`` -> a detailed caption (every attribute stated) that keeps what ``prompt`` states."""
    return detailed_caption(extend_spec(prompt, seed))
