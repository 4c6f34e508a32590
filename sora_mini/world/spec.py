"""The scene spec: what a world video shows, independent of its size and duration.

A ``SceneSpec`` holds a background and 1-3 objects; each object has a shape, a colour, a size,
a start region (with a small seeded offset inside it) and one motion. Positions are fractions of
the frame (x across the width, y down the height); sizes and speeds are fractions of the frame's
shorter side, so one spec renders at any height, width and duration. Event times are fractions
of the duration. Every field has a fixed vocabulary (``VOCABULARY``: attribute -> allowed values,
also exported by ``sora_mini.world``); ``validate`` names the bad value and the allowed ones.
JSON round-trips exactly (``to_json`` / ``from_json``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from types import MappingProxyType

# ----------------------------------------------------------------------------------------------
# Vocabulary (the caption grammar, the renderer and the evaluator all read these)
# ----------------------------------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle")
# object colours: saturated and far apart in RGB so the analyzer can tell them from pixels alone
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (240, 220, 40),
    "purple": (160, 60, 220),
    "orange": (250, 140, 20),
    "cyan": (40, 220, 230),
    "white": (245, 245, 245),
}
# backgrounds: dark, so every object colour stands out
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "gray": (70, 70, 70),
    "navy": (15, 20, 60),
}
SIZES: dict[str, float] = {"small": 0.14, "large": 0.24}  # half-extent / shorter side
REGIONS: dict[str, tuple[float, float]] = {  # name -> (x, y) of the region centre
    "top left": (1 / 6, 1 / 6), "top": (0.5, 1 / 6), "top right": (5 / 6, 1 / 6),
    "left": (1 / 6, 0.5), "center": (0.5, 0.5), "right": (5 / 6, 0.5),
    "bottom left": (1 / 6, 5 / 6), "bottom": (0.5, 5 / 6), "bottom right": (5 / 6, 5 / 6),
}
DIRECTIONS: dict[str, tuple[float, float]] = {  # name -> unit (dx, dy) in pixels, y down
    "right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0),
    "up right": (0.7071, -0.7071), "up left": (-0.7071, -0.7071),
    "down right": (0.7071, 0.7071), "down left": (-0.7071, 0.7071),
}
SPEEDS: dict[str, float] = {"slowly": 0.03, "quickly": 0.07}  # shorter side per frame
# motions: one per object
#   still                      stays where it starts
#   move        direction speed  constant velocity, bouncing off the walls
#   fall                       starts at rest, falls under gravity, bounces on the ground
#   grow / shrink              stays in place, size changes linearly over the video
#   appear / disappear  time   still; invisible before / after the event time
#   turn  direction speed direction2 time   moves one way, then the other from the event time
MOTIONS = ("still", "move", "fall", "grow", "shrink", "appear", "disappear", "turn")
EVENT_TIMES: dict[str, float] = {  # words -> fraction of the duration
    "early": 0.25, "halfway through": 0.5, "late": 0.75,
}
COLORS = tuple(PALETTE)  # the object colour names
# every attribute a spec names -> its allowed values (ObjectSpec fields, and the scene's background)
VOCABULARY = MappingProxyType({
    "shape": SHAPES, "color": COLORS, "size": tuple(SIZES), "region": tuple(REGIONS),
    "motion": MOTIONS, "direction": tuple(DIRECTIONS), "speed": tuple(SPEEDS),
    "direction2": tuple(DIRECTIONS), "event_time": tuple(EVENT_TIMES),
    "background": tuple(BACKGROUNDS),
})
GRAVITY = 0.012  # shorter side per frame^2
RESTITUTION = 0.8  # speed kept at a bounce on the ground
GROW_FACTOR = 1.6  # final size / start size for "grow" (its inverse for "shrink")
MAX_OBJECTS = 3

MIN_SIZE = 16  # smallest height / width the renderer draws (a small object is then 4.5 px across)


def event_frame(event_time: str | float, frames: int) -> int | None:
    """The frame index at which an event happens in a ``frames``-long video.

    ``round(fraction * (frames - 1))`` (halves rounded up), kept within ``1 .. frames - 1`` so a
    video always shows the state both before and after the event; ``None`` for an image
    (``frames == 1``), which holds no event. Renderer, captions and evaluator all use this.
    """
    fraction = EVENT_TIMES[event_time] if isinstance(event_time, str) else float(event_time)
    if frames <= 1:
        return None
    return min(max(int(fraction * (frames - 1) + 0.5), 1), frames - 1)


_NEEDS_DIRECTION = {"move", "turn"}
_NEEDS_TIME = {"appear", "disappear", "turn"}


def _check(value, allowed, what: str):
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, allowed))}")


# ----------------------------------------------------------------------------------------------
# Dataclasses
# ----------------------------------------------------------------------------------------------
@dataclass
class ObjectSpec:
    """One object: what it is, where it starts and how it moves."""

    shape: str
    color: str
    size: str = "small"
    region: str = "center"
    motion: str = "still"
    direction: str | None = None  # move / turn
    speed: str | None = None  # move / turn
    direction2: str | None = None  # turn: the direction after the event
    event_time: str | None = None  # appear / disappear / turn: a key of EVENT_TIMES
    offset: tuple[float, float] = (0.0, 0.0)  # seeded jitter of the start inside its region

    def validate(self) -> ObjectSpec:
        _check(self.shape, SHAPES, "shape")
        _check(self.color, PALETTE, "colour")
        _check(self.size, SIZES, "size")
        _check(self.region, REGIONS, "region")
        _check(self.motion, MOTIONS, "motion")
        if self.motion in _NEEDS_DIRECTION:
            _check(self.direction, DIRECTIONS, f"direction for motion {self.motion!r}")
            _check(self.speed, SPEEDS, f"speed for motion {self.motion!r}")
        if self.motion == "turn":
            _check(self.direction2, DIRECTIONS, "second direction for motion 'turn'")
            if self.direction2 == self.direction:
                raise ValueError(f"a turn needs two different directions, got {self.direction!r} twice")
        if self.motion in _NEEDS_TIME:
            _check(self.event_time, EVENT_TIMES, f"event time for motion {self.motion!r}")
        if len(self.offset) != 2 or any(abs(o) > 1 / 6 for o in self.offset):
            raise ValueError(f"offset {self.offset} must be two numbers within +-1/6 (a region is 1/3 wide)")
        return self

    @property
    def start_xy(self) -> tuple[float, float]:
        """Start centre as fractions (x of the width, y of the height)."""
        cx, cy = REGIONS[self.region]
        return cx + self.offset[0], cy + self.offset[1]


@dataclass
class SceneSpec:
    """A whole scene: a background and 1-3 objects with distinct colours."""

    objects: list[ObjectSpec]
    background: str = "black"
    seed: int = 0  # what sampled it (for the record; rendering is deterministic without it)
    extra: dict = field(default_factory=dict)

    def validate(self) -> SceneSpec:
        _check(self.background, BACKGROUNDS, "background")
        if not 1 <= len(self.objects) <= MAX_OBJECTS:
            raise ValueError(f"a scene has 1 to {MAX_OBJECTS} objects, got {len(self.objects)}")
        colors = [o.color for o in self.objects]
        if len(set(colors)) != len(colors):
            raise ValueError(f"object colours must be distinct within a scene, got {colors}")
        for o in self.objects:
            o.validate()
        return self

    # -- JSON -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, **kw) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> SceneSpec:
        if not isinstance(d, dict) or "objects" not in d:
            raise ValueError("a scene spec is a JSON object with an 'objects' list "
                             "(and optional 'background', 'seed', 'extra')")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown scene fields {sorted(unknown)}; allowed: {sorted(known)}")
        obj_fields = {f.name for f in dataclasses.fields(ObjectSpec)}
        objects = []
        for i, o in enumerate(d["objects"]):
            if not isinstance(o, dict):
                raise ValueError(f"object {i} must be a JSON object, got {type(o).__name__}")  # noqa: TRY004
            bad = set(o) - obj_fields
            if bad:
                raise ValueError(f"object {i}: unknown fields {sorted(bad)}; allowed: {sorted(obj_fields)}")
            o = dict(o)
            if "offset" in o:
                o["offset"] = tuple(float(v) for v in o["offset"])
            try:
                objects.append(ObjectSpec(**o))
            except TypeError as e:
                raise ValueError(f"object {i}: {e}") from e
        rest = {k: v for k, v in d.items() if k != "objects"}
        return cls(objects=objects, **rest).validate()

    @classmethod
    def from_json(cls, text: str) -> SceneSpec:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"malformed scene spec JSON: {e}") from e
        return cls.from_dict(d)
