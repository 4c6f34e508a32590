"""Ground truth that comes with every rendered video: per-frame tracks of each object and its events.

All positions are in pixels of the rendered video: x to the right from the left edge, y down from
the top edge, pixel ``i`` covering ``[i, i + 1)`` (its centre is at ``i + 0.5``). Arrays are indexed
by frame first: ``box [T, 4]``, ``center [T, 2]``, ``half_extent [T]``, ``visible [T]``.
The evaluator's analyzer recovers the same quantities from pixels alone and compares them here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EVENT_KINDS = ("bounce", "appear", "disappear", "turn")
WALLS = ("left", "right", "top", "bottom")


@dataclass
class Event:
    """Something that happens at one moment: a bounce off a wall, an appearance, a turn."""

    kind: str  # one of EVENT_KINDS
    object: int  # index into ``spec.objects`` (and ``Annotations.objects``)
    frame: int  # the first frame that shows the state after the event
    time: float  # exact time in frames (a bounce usually falls between two frames)
    wall: str | None = None  # bounces only: one of WALLS

    def to_dict(self) -> dict:
        return {"kind": self.kind, "object": self.object, "frame": self.frame,
                "time": self.time, "wall": self.wall}


@dataclass
class ObjectTrack:
    """One object over the video; every array has the frame axis first (length T)."""

    index: int
    shape: str
    color: str
    motion: str
    center: np.ndarray  # [T, 2] float, (x, y) centre of the bounding box: the physics position
    half_extent: np.ndarray  # [T] float, half the box side (radius of a circle)
    velocity: np.ndarray  # [T, 2] float, pixels per frame at that frame (after an event there)
    visible: np.ndarray  # [T] bool, drawn in that frame (appear / disappear switch it)
    visible_fraction: np.ndarray  # [T] float, share of its area not hidden by later objects (0 if not drawn)

    @property
    def box(self) -> np.ndarray:
        """``[T, 4]`` bounding box ``(x0, y0, x1, y1)`` in pixels (always inside the frame)."""
        r = self.half_extent[:, None]
        return np.concatenate([self.center - r, self.center + r], axis=1)

    @property
    def centroid(self) -> np.ndarray:
        """``[T, 2]`` centre of mass of the filled shape: the box centre, except for the triangle
        (apex up, base down) whose centroid sits a third of the half-extent below it."""
        c = self.center.copy()
        if self.shape == "triangle":
            c[:, 1] += self.half_extent / 3
        return c

    def at(self, t: int) -> dict:
        """Everything about this object at frame ``t``, as plain Python values."""
        return {"index": self.index, "shape": self.shape, "color": self.color,
                "box": [float(v) for v in self.box[t]], "center": [float(v) for v in self.center[t]],
                "centroid": [float(v) for v in self.centroid[t]],
                "half_extent": float(self.half_extent[t]),
                "velocity": [float(v) for v in self.velocity[t]], "visible": bool(self.visible[t]),
                "visible_fraction": float(self.visible_fraction[t])}

    def to_dict(self) -> dict:
        return {"index": self.index, "shape": self.shape, "color": self.color, "motion": self.motion,
                "box": self.box.tolist(), "center": self.center.tolist(),
                "centroid": self.centroid.tolist(), "half_extent": self.half_extent.tolist(),
                "velocity": self.velocity.tolist(), "visible": self.visible.tolist(),
                "visible_fraction": self.visible_fraction.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> ObjectTrack:
        return cls(index=int(d["index"]), shape=d["shape"], color=d["color"], motion=d["motion"],
                   center=np.asarray(d["center"], dtype=np.float64).reshape(-1, 2),
                   half_extent=np.asarray(d["half_extent"], dtype=np.float64),
                   velocity=np.asarray(d["velocity"], dtype=np.float64).reshape(-1, 2),
                   visible=np.asarray(d["visible"], dtype=bool),
                   visible_fraction=np.asarray(d["visible_fraction"], dtype=np.float64))


@dataclass
class Annotations:
    """What a rendered video shows: ``objects[i]`` follows ``spec.objects[i]`` (drawing order)."""

    height: int
    width: int
    frames: int
    objects: list[ObjectTrack]
    events: list[Event] = field(default_factory=list)  # sorted by time

    @property
    def unit(self) -> float:
        """Pixels per spec unit: sizes and speeds in the spec are fractions of the shorter side."""
        return float(min(self.height, self.width))

    def events_of(self, kind: str | None = None, object: int | None = None) -> list[Event]:
        """The events of one kind and/or one object, in time order."""
        return [e for e in self.events
                if (kind is None or e.kind == kind) and (object is None or e.object == object)]

    def frame(self, t: int) -> list[dict]:
        """Per-object state at frame ``t`` (see ``ObjectTrack.at``)."""
        if not 0 <= t < self.frames:
            raise IndexError(f"frame {t} out of range for a {self.frames}-frame video")
        return [o.at(t) for o in self.objects]

    def to_dict(self) -> dict:
        """JSON-able: lists of per-frame values for each object, and the event list."""
        return {"height": self.height, "width": self.width, "frames": self.frames,
                "objects": [o.to_dict() for o in self.objects],
                "events": [e.to_dict() for e in self.events]}

    @classmethod
    def from_dict(cls, d: dict) -> Annotations:
        return cls(height=int(d["height"]), width=int(d["width"]), frames=int(d["frames"]),
                   objects=[ObjectTrack.from_dict(o) for o in d["objects"]],
                   events=[Event(**e) for e in d["events"]])
