"""The motion of one object over T frames, in pixels, in closed form (no time stepping).

Shapes: ``center [T, 2]``, ``velocity [T, 2]``, ``half_extent [T]``, ``visible [T]``.
``move`` is constant velocity folded at the walls (a reflection when the shape's extent touches one);
``turn`` is two such pieces joined at the event frame; ``fall`` is a parabola from rest per flight,
with the speed times ``RESTITUTION`` kept at each ground bounce. Because every frame is read off the
exact solution, velocities are constant between bounces and the second difference of a fall is
exactly the gravity, whatever the duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sora_mini.world.annotations import Event
from sora_mini.world.spec import (
    DIRECTIONS,
    GRAVITY,
    GROW_FACTOR,
    RESTITUTION,
    SIZES,
    SPEEDS,
    ObjectSpec,
    event_frame,
)

MIN_BOUNCE_PX = 0.5  # a ground bounce that would rise less than this comes to rest instead


@dataclass
class Trajectory:
    """One object's state per frame (pixels) and its events."""

    center: np.ndarray  # [T, 2]
    velocity: np.ndarray  # [T, 2]
    half_extent: np.ndarray  # [T]
    visible: np.ndarray  # [T] bool
    events: list[Event] = field(default_factory=list)


def max_half_extent(obj: ObjectSpec) -> float:
    """The largest half-extent over the video, as a fraction of the shorter side."""
    r = SIZES[obj.size]
    return r * GROW_FACTOR if obj.motion == "grow" else r


def _fold(s: np.ndarray, length: float, v: float) -> tuple[np.ndarray, np.ndarray]:
    """Unfolded offset ``s`` from the low wall -> (offset inside ``[0, length]``, velocity sign).

    Reflecting at both walls is the triangle wave of period ``2 * length``; the sign is the one
    after a bounce when the shape touches a wall exactly at a frame.
    """
    if length <= 0:
        return np.zeros_like(s), np.ones_like(s)
    m = np.mod(s, 2 * length)
    pos = np.where(m > length, 2 * length - m, m)
    if v >= 0:
        sign = np.where(m < length, 1.0, -1.0)
    else:
        sign = np.where((m > 0) & (m <= length), 1.0, -1.0)
    return pos, sign


def _bounces(s0: float, v: float, length: float, t0: float, t1: float, walls: tuple[str, str],
             index: int) -> list[Event]:
    """Wall hits of the unfolded line ``s0 + v (t - t0)`` for ``t`` in ``(t0, t1]``."""
    if v == 0 or length <= 0 or t1 <= t0:
        return []
    s1 = s0 + v * (t1 - t0)
    if v > 0:
        ks = range(math.floor(s0 / length) + 1, math.floor(s1 / length) + 1)
    else:
        ks = range(math.ceil(s0 / length) - 1, math.ceil(s1 / length) - 1, -1)
    events = []
    for k in ks:
        t = t0 + (k * length - s0) / v
        if t0 < t <= t1:
            events.append(Event("bounce", index, math.ceil(t - 1e-6), float(t), walls[k % 2]))
    return events


def _linear_with_walls(p0: np.ndarray, vel: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                       t: np.ndarray, t0: float, index: int) -> tuple[np.ndarray, np.ndarray, list[Event]]:
    """Constant velocity ``vel`` from ``p0`` at time ``t0``, reflecting inside ``[lo, hi]`` per axis.

    ``t`` are the frames to evaluate (all >= t0) -> positions ``[len(t), 2]``, velocities, events
    up to ``t.max()``.
    """
    pos = np.empty((len(t), 2))
    velo = np.empty((len(t), 2))
    events: list[Event] = []
    for axis, walls in ((0, ("left", "right")), (1, ("top", "bottom"))):
        length = hi[axis] - lo[axis]
        s0 = p0[axis] - lo[axis]
        off, sign = _fold(s0 + vel[axis] * (t - t0), length, vel[axis])
        pos[:, axis] = lo[axis] + off
        velo[:, axis] = vel[axis] * sign
        if len(t):
            events += _bounces(s0, vel[axis], length, t0, float(t.max()), walls, index)
    return pos, velo, events


def _fall(y0: float, ground: float, g: float, frames: int, index: int):
    """Fall from rest at ``y0`` with gravity ``g``; bounce at ``ground`` keeping RESTITUTION of the speed."""
    t = np.arange(frames, dtype=np.float64)
    y = np.full(frames, ground)
    vy = np.zeros(frames)
    events = []
    drop = ground - y0
    if drop <= 0 or g <= 0:
        return y, vy, events
    # flights: (start time, start height, upward start speed); the first starts at rest at y0
    t_hit = math.sqrt(2 * drop / g)
    flights = [(0.0, y0, 0.0)]
    impacts = [t_hit]
    speed = g * t_hit
    while impacts[-1] <= frames - 1 and len(impacts) < 200:
        speed *= RESTITUTION
        if speed * speed / (2 * g) < MIN_BOUNCE_PX:
            break
        events.append(Event("bounce", index, math.ceil(impacts[-1] - 1e-6), impacts[-1], "bottom"))
        flights.append((impacts[-1], ground, speed))
        impacts.append(impacts[-1] + 2 * speed / g)
    for (ts, ys, up), te in zip(flights, impacts):
        sel = (t >= ts) & (t < te)
        dt = t[sel] - ts
        y[sel] = ys - up * dt + 0.5 * g * dt * dt
        vy[sel] = -up + g * dt
    return y, vy, events


def trajectory(obj: ObjectSpec, index: int, height: int, width: int, frames: int) -> Trajectory:
    """Where object ``index`` is, how big and whether drawn, at each of ``frames`` frames."""
    unit = float(min(height, width))
    size = np.array([width, height], dtype=np.float64)
    r0 = SIZES[obj.size] * unit
    r_max = max_half_extent(obj) * unit
    t = np.arange(frames, dtype=np.float64)
    # the start centre, moved inward if needed so the largest extent fits in the frame
    lo_max, hi_max = np.full(2, r_max), size - r_max
    p0 = np.clip(np.array(obj.start_xy) * size, lo_max, np.maximum(lo_max, hi_max))
    center = np.tile(p0, (frames, 1))
    velocity = np.zeros((frames, 2))
    half = np.full(frames, r0)
    visible = np.ones(frames, dtype=bool)
    events: list[Event] = []
    e = event_frame(obj.event_time, frames) if obj.event_time is not None else None
    lo, hi = np.full(2, r0), size - r0  # where the centre may go for a shape of half-extent r0

    if obj.motion in ("move", "turn"):
        v1 = np.array(DIRECTIONS[obj.direction]) * SPEEDS[obj.speed] * unit
        if obj.motion == "turn" and e is not None:
            pos, vel, events = _linear_with_walls(p0, v1, lo, hi, t[: e + 1], 0.0, index)
            center[:e], velocity[:e] = pos[:e], vel[:e]
            # the turn: the new direction, same speed, from the position reached at the event frame
            v2 = np.array(DIRECTIONS[obj.direction2]) * SPEEDS[obj.speed] * unit
            events.append(Event("turn", index, e, float(e)))
            pos2, vel2, after = _linear_with_walls(pos[e], v2, lo, hi, t[e:], float(e), index)
            center[e:], velocity[e:] = pos2, vel2
            events += after
        else:
            center, velocity, events = _linear_with_walls(p0, v1, lo, hi, t, 0.0, index)
    elif obj.motion == "fall":
        y, vy, events = _fall(p0[1], size[1] - r0, GRAVITY * unit, frames, index)
        center[:, 1], velocity[:, 1] = y, vy
    elif obj.motion in ("grow", "shrink") and frames > 1:
        end = GROW_FACTOR if obj.motion == "grow" else 1 / GROW_FACTOR
        half = r0 * (1 + (end - 1) * t / (frames - 1))
    elif obj.motion in ("appear", "disappear") and e is not None:
        visible = (t >= e) if obj.motion == "appear" else (t < e)
        events.append(Event(obj.motion, index, e, float(e)))
    return Trajectory(center, velocity, half, visible, sorted(events, key=lambda ev: ev.time))
