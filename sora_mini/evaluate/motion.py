"""From one object's track to its motion: kind, direction, speed, events and physics residuals.

``analyze_motion(center [T, 2], half_extent [T], present [T], reliable [T], hidden [T], H, W)``
-> ``MotionResult``. Pixels only: the track comes from ``VideoAnalyzer``.

* visibility: a single switch absent -> present is ``appear``, present -> absent ``disappear``
  (frames where the object's place is covered by another object count as unknown);
* size: a linear fit of the half-extent; end / start above 1.2 is ``grow``, below 1/1.2 ``shrink``;
* position: no displacement above 3% of the shorter side is ``still``; a vertical track that starts
  from rest and accelerates downward (a quadratic fit of y(t)) is ``fall``;
* otherwise the track is followed frame by frame at constant velocity between walls placed one
  half-extent in from the frame's edges, mirroring the velocity where it crosses one (a bounce).
  A frame the prediction misses is either a bad measurement (if the next frame is back on track)
  or a change of velocity: the largest change of direction (>= 25 degrees) is the ``turn``, its
  frame the first with the new velocity (when unseen frames hide it, the one keeping the speed);
  no change: ``move``. Tolerances grow with the measured jitter of the track (generated videos).
Direction is the first straight segment's velocity, nearest of the 8 vocabulary directions; speed
the median step's class (threshold: the geometric mean of the two speeds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sora_mini.evaluate.tracking import follow_track, largest_turn, move_physics
from sora_mini.world.spec import DIRECTIONS, EVENT_TIMES, SPEEDS, event_frame

SPEED_THRESHOLD = float(np.sqrt(np.prod(list(SPEEDS.values()))))  # shorter side per frame
STILL_TOLERANCE = 0.03  # largest displacement of a still object, shorter side
GROW_RATIO = 1.2  # size ratio end / start above which an object grows
FALL_MAX_START_SPEED = 0.5 * min(SPEEDS.values())  # a fall starts from rest
FALL_MIN_ACCELERATION = 0.003  # shorter side per frame^2 (the world's gravity is 0.012)


@dataclass
class MotionResult:
    motion: str | None  # None for an image (T = 1)
    direction: str | None = None
    speed: str | None = None
    direction2: str | None = None
    event_frame: int | None = None
    event_time: str | None = None
    start_center: tuple[float, float] = (float("nan"), float("nan"))
    start_half_extent: float | None = None
    events: list[dict] = field(default_factory=list)
    physics: dict = field(default_factory=dict)


def nearest_direction(v: np.ndarray) -> str:
    names = list(DIRECTIONS)
    units = np.array([DIRECTIONS[n] for n in names])
    return names[int(np.argmax(units @ (v / max(np.linalg.norm(v), 1e-9))))]


def nearest_event_time(frame: int, frames: int) -> str:
    names = list(EVENT_TIMES)
    return min(names, key=lambda n: (abs(event_frame(n, frames) - frame), EVENT_TIMES[n]))


def _switch(state: np.ndarray) -> tuple[str | None, int | None]:
    """Best single visibility switch of a 1 / 0 / -1 (unknown) sequence -> (kind, frame)."""
    known = np.flatnonzero(state >= 0)
    s = state[known]
    if (s == 1).all() or s[0] == s[-1]:
        return None, None
    kind = "appear" if s[0] == 0 else "disappear"
    before, after = (0, 1) if kind == "appear" else (1, 0)
    # ties (frames where the object's place is covered) go to what is seen: an appearance at the
    # first frame that shows it, a disappearance right after the last one
    sign = -1 if kind == "appear" else 1
    costs = [
        ((s[known < e] != before).sum() + (s[known >= e] != after).sum(), sign * e)
        for e in range(1, len(state))
    ]
    return kind, sign * min(costs)[1]


def _quadratic(t: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Fit y = c0 + v t + a t^2 / 2 -> (v at t[0], a, rms)."""
    t0 = t - t[0]
    A = np.stack([np.ones_like(t0), t0, 0.5 * t0**2], 1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return float(coef[1]), float(coef[2]), float(np.sqrt(((A @ coef - y) ** 2).mean()))


def analyze_motion(
    center, half_extent, present, reliable, hidden, height: int, width: int
) -> MotionResult:
    """One object's motion from its measured track (see the module docstring)."""
    T = len(present)
    unit = float(min(height, width))
    idx = np.flatnonzero(reliable) if reliable.any() else np.flatnonzero(present)
    P, R = center[idx], half_extent[idx]
    out = MotionResult(
        motion=None, start_center=tuple(map(float, P[0])), start_half_extent=float(np.nanmedian(R))
    )
    if T == 1:
        return out
    state = present.astype(int)
    state[hidden] = -1
    kind, e = _switch(state)
    # only a still object appears or disappears; a moving one that goes missing is hidden
    if kind is not None and np.linalg.norm(P - P[0], axis=1).max() < STILL_TOLERANCE * unit:
        out.motion, out.event_frame, out.event_time = kind, int(e), nearest_event_time(int(e), T)
        out.events.append({"kind": kind, "frame": int(e)})
        return out
    if len(idx) >= 2:  # size: a linear fit of r(t)
        slope, r0 = np.polyfit(idx.astype(float), R, 1)
        ratio = (r0 + slope * (T - 1)) / max(r0, 1e-6)
        out.physics["size_ratio"] = float(ratio)
        if ratio > GROW_RATIO or ratio < 1 / GROW_RATIO:
            out.motion = "grow" if ratio > 1 else "shrink"
            out.start_half_extent = float(r0)
            return out
    noise = _position_noise(idx, P)
    disp = np.linalg.norm(P - P[0], axis=1)
    out.physics["position_noise"] = noise / unit
    if len(idx) < 2 or disp.max() < STILL_TOLERANCE * unit + 4 * noise:
        out.motion = "still"
        return out
    gap = np.diff(idx).astype(float)[:, None]
    v = np.diff(P, axis=0) / gap  # [K, 2] velocity of each interval between measured frames
    out.start_center = tuple(map(float, P[0] - v[0] * idx[0]))
    if _is_fall(idx, P, v, unit, noise):
        return _fall(out, idx, P, v, unit, height, np.nanmedian(R), noise)
    return _move(out, T, idx, P, v, unit, height, width, half_extent=float(np.nanmedian(R)), noise=noise)


def _position_noise(idx, P) -> float:
    """Robust per-frame jitter of the centre (pixels) from second differences of consecutive frames:
    a constant velocity or acceleration leaves none; events are outliers the median ignores."""
    k = np.flatnonzero((idx[2:] - idx[:-2]) == 2)
    if len(k) < 6:  # too few to tell jitter from a turn or a bounce
        return 0.0
    d2 = P[k + 2] - 2 * P[k + 1] + P[k]  # [n, 2]
    mad = np.median(np.abs(d2 - np.median(d2, axis=0)), axis=0)
    return float(1.4826 * mad.mean() / np.sqrt(6.0))  # var of a 2nd difference of noise: 6 sigma^2


def _first_flight(idx, y, unit, noise: float = 0.0) -> int:
    """How many of the first measured frames one parabola y(t) explains (a fall until its bounce):
    frames are added while the parabola through the earlier ones predicts them."""
    m = min(3, len(idx))
    while m < len(idx):
        t = idx[:m].astype(float)
        coef = np.polyfit(t, y[:m], 2)
        if abs(np.polyval(coef, idx[m]) - y[m]) > 0.1 + 0.002 * unit + 4 * noise:
            break
        m += 1
    return m


def _is_fall(idx, P, v, unit, noise: float = 0.0) -> bool:
    # a fall keeps its x and first moves down
    if np.abs(P[:, 0] - P[0, 0]).max() >= 0.01 * unit + 4 * noise or v[0, 1] <= 0.002 * unit:
        return False
    up = np.flatnonzero(v[:, 1] < 0)
    if len(up) and up[0] < 2:  # hit the ground within two frames: if it started at rest
        return bool(v[0, 1] < FALL_MAX_START_SPEED * unit)
    n = _first_flight(idx, P[:, 1], unit, noise)
    if n < 3:
        return False
    v0, a, _ = _quadratic(idx[:n].astype(float), P[:n, 1])
    return a > FALL_MIN_ACCELERATION * unit and abs(v0) < FALL_MAX_START_SPEED * unit


def _fall(out, idx, P, v, unit, height, r, noise: float = 0.0) -> MotionResult:
    out.motion = "fall"
    n = _first_flight(idx, P[:, 1], unit, noise)
    phys = {"gravity": None, "gravity_rms": None, "bounces": 0}
    if n >= 3:
        v0, a, rms = _quadratic(idx[:n].astype(float), P[:n, 1])
        phys.update(gravity=a / unit, gravity_rms=rms / unit, start_speed=v0 / unit)
    # ground bounces: the vertical velocity turns from down to up next to the bottom wall
    ground = height - r
    for k in np.flatnonzero((v[:-1, 1] > 0) & (v[1:, 1] < 0)):
        if ground - P[k + 1, 1] < abs(v[k, 1]) + 0.5 + 0.05 * unit:
            out.events.append({"kind": "bounce", "frame": int(idx[k + 1]), "wall": "bottom"})
    phys["bounces"] = len(out.events)
    out.physics.update(phys)
    return out


def _move(
    out: MotionResult,
    frames: int,
    frames_seen,
    centers,
    velocities,
    unit: float,
    height: int,
    width: int,
    half_extent: float,
    noise: float = 0.0,
) -> MotionResult:
    """A moving object's caption-level motion (``move`` or ``turn``), direction, speed, events and
    physics from its track (``centers [n, 2]`` at ``frames_seen [n]``, ``velocities [n - 1, 2]``)."""
    lo = np.array([half_extent, half_extent])
    hi = np.array([width - half_extent, height - half_extent])
    f = follow_track(frames_seen, centers, velocities[0], lo, hi, noise)
    out.motion = "move"
    out.direction = nearest_direction(f.velocity if f.first_velocity is None else f.first_velocity)
    out.speed = "quickly" if np.median(f.speeds) / unit > SPEED_THRESHOLD else "slowly"
    turn = largest_turn(f.changes)
    if turn is not None:
        e, v2 = turn
        out.motion, out.event_frame, out.event_time = "turn", e, nearest_event_time(e, frames)
        out.direction2 = nearest_direction(v2)
        out.events.append({"kind": "turn", "frame": e})
    out.events += f.bounces
    out.events.sort(key=lambda ev: ev["frame"])
    out.physics.update(
        move_physics(f, len(frames_seen) - 1, out.motion == "turn", frames_seen, centers,
                     out.events, unit)
    )
    return out
