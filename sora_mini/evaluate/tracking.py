"""Follow a moving object's track at constant velocity with mirror bounces; find its turns.

Shapes: ``frames_seen`` ``[n]`` (int frame indices where the centre is measured, increasing),
``centers`` ``[n, 2]`` (x, y pixels), velocities ``[2]`` pixels per frame. Walls ``lo`` / ``hi``
``[2]`` are the lowest / highest centre per axis (one half-extent in from the frame's edges).

* ``follow_track``: predict each next centre from the current velocity (mirrored at a wall: a
  bounce). A missed prediction is either a bad measurement (a *glitch*: the frame after it is back
  on track) or a change of velocity (kept for ``largest_turn``);
* ``largest_turn``: the change of direction that makes the ``turn``, if any is >= 25 degrees;
* ``move_physics``: how many steps the constant-velocity-with-bounces model explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

TURN_MIN_DEGREES = 25.0  # a smaller change of direction is not a turn
STEP_TOLERANCE = 0.1  # a prediction may miss by this share of the step's length ...
STEP_SLACK_PX = 0.15  # ... plus this many pixels (sub-pixel measurement error) + 4 noise lengths
WALLS = (("left", "right"), ("top", "bottom"))


def advance(p, v, gap, lo, hi):
    """Move ``p`` by ``v * gap`` between walls ``lo`` / ``hi`` (per axis), mirroring at a wall.

    -> (position, velocity after, hits [(axis, wall index 0 low / 1 high, time from p)]).
    """
    q, v_out, hits = p + v * gap, v.copy(), []
    for ax in (0, 1):
        for w, (wall, beyond) in enumerate(((lo[ax], q[ax] < lo[ax]), (hi[ax], q[ax] > hi[ax]))):
            if beyond and v[ax] != 0 and hi[ax] > lo[ax]:
                hits.append((ax, w, (wall - p[ax]) / v[ax]))
                q[ax], v_out[ax] = 2 * wall - q[ax], -v[ax]
    return q, v_out, hits


def reach(p, q, gap, lo, hi, speed):
    """Velocities that take ``p`` to ``q`` in ``gap`` frames, straight or after one wall per axis;
    the one whose speed is closest to ``speed`` -> (velocity, velocity after, hits)."""
    options = []
    for fx in (None, 0, 1):
        for fy in (None, 0, 1):
            target = q.copy()
            for ax, f in ((0, fx), (1, fy)):
                if f is not None:
                    target[ax] = 2 * (lo[ax], hi[ax])[f] - q[ax]
            vel = (target - p) / gap
            nq, v_out, hits = advance(p, vel, gap, lo, hi)
            if np.allclose(nq, q, atol=1e-6):
                options.append((abs(np.linalg.norm(vel) - speed), vel, v_out, hits))
    best = min(options, key=lambda o: o[0])
    return best[1], best[2], best[3]


def step_fits(predicted, observed, velocity, gap, noise: float) -> tuple[bool, float]:
    """Is ``observed`` [2] where ``predicted`` [2] says, within the tolerance of a ``gap``-frame
    step at ``velocity``? -> (fits, the miss in pixels)."""
    err = float(np.linalg.norm(predicted - observed))
    tol = STEP_TOLERANCE * np.linalg.norm(velocity) * gap + STEP_SLACK_PX + 4 * noise
    return err <= tol, err


@dataclass
class FollowedTrack:
    """What ``follow_track`` found; ``velocity`` is the one predicting the last frame."""

    velocity: np.ndarray  # [2] current velocity, pixels per frame
    segment_start: int = 0  # index (into frames_seen) of the current straight segment's first frame
    first_velocity: np.ndarray | None = None  # the first straight segment's velocity, once it ended
    bounces: list = field(default_factory=list)  # event dicts: kind, frame, wall, time
    changes: list = field(default_factory=list)  # (frame, velocity before, velocity after)
    glitches: list = field(default_factory=list)  # frames whose measurement was off the track
    errors: list = field(default_factory=list)  # per explained step: miss / step length
    speeds: list = field(default_factory=list)  # per straight step: pixels per frame
    bounce_steps: int = 0  # steps explained by a bounce

    def end_segment(self) -> None:
        """The current straight segment ends (a bounce or a change): keep the first velocity."""
        if self.first_velocity is None:
            self.first_velocity = self.velocity

    def record_bounces(self, start: float, hits) -> None:
        """Wall hits ``[(axis, wall, time from start)]`` of a step from frame ``start``."""
        for ax, w, t in hits:
            self.bounces.append(
                {
                    "kind": "bounce",
                    "frame": int(np.ceil(start + t - 1e-6)),
                    "wall": WALLS[ax][w],
                    "time": float(start + t),
                }
            )


def change_time(p_from, t_from: int, p_to, t_to: int, velocity, lo, hi):
    """When between frames ``t_from`` and ``t_to`` the velocity changed to reach ``p_to``: the
    frame whose new velocity keeps the speed best (unseen frames hide the exact moment).

    -> (frame, new velocity, velocity after its bounces, hits from ``t_from``).
    """
    speed = np.linalg.norm(velocity)
    best = None
    for c in range(int(t_from), int(t_to)):
        p_c, _, hits_c = advance(p_from, velocity, c - t_from, lo, hi)
        v_new, v_after, hits_new = reach(p_c, p_to, t_to - c, lo, hi, speed)
        miss = abs(np.linalg.norm(v_new) - speed)
        if best is None or miss < best[0] - 1e-9:
            hits = hits_c + [(ax, w, t + c - t_from) for ax, w, t in hits_new]
            best = (miss, c, v_new, v_after, hits)
    return best[1:]


def follow_track(frames_seen, centers, first_velocity, lo, hi, noise: float) -> FollowedTrack:
    """Walk the track from its second measured frame (the first step sets the velocity)."""
    idx, P = frames_seen, centers
    f = FollowedTrack(velocity=first_velocity.copy(), speeds=[np.linalg.norm(first_velocity)])
    i, n = 1, len(idx)
    while i < n - 1:
        j, gap = i + 1, idx[i + 1] - idx[i]
        pred, v_after, hits = advance(P[i], f.velocity, gap, lo, hi)
        good, err = step_fits(pred, P[j], f.velocity, gap, noise)
        if good:
            f.errors.append(err / max(np.linalg.norm(f.velocity) * gap, 1e-6))
            f.record_bounces(idx[i], hits)
            if not hits:  # the segment's mean velocity: less jitter than the last step's
                f.speeds.append(np.linalg.norm(P[j] - P[i]) / gap)
                s = f.segment_start
                v_after = (P[j] - P[s]) / (idx[j] - idx[s])
            else:
                f.bounce_steps += 1
                f.end_segment()
                f.segment_start = j
            f.velocity, i = v_after, j
            continue
        # either the velocity changed (a turn, maybe straight into a wall) or frame j is a bad
        # measurement: keep whichever predicts the next frame better
        t_change, v_new, v_after, hits = change_time(P[i], idx[i], P[j], idx[j], f.velocity, lo, hi)
        if j + 1 < n and _is_glitch(idx, P, i, j, f.velocity, v_after, lo, hi, noise):
            _pred2, v_after2, hits2 = advance(P[i], f.velocity, idx[j + 1] - idx[i], lo, hi)
            f.glitches.append(int(idx[j]))
            f.record_bounces(idx[i], hits2)
            if hits2:
                f.end_segment()
                f.segment_start = j + 1
            f.velocity, i = v_after2, j + 1
            continue
        f.changes.append((t_change, f.velocity.copy(), v_new))
        f.errors.append(err / max(np.linalg.norm(f.velocity) * gap, 1e-6))
        f.record_bounces(idx[i], hits)
        f.end_segment()
        f.velocity, i, f.segment_start = v_after, j, j
    return f


def _is_glitch(idx, P, i, j, velocity, v_changed, lo, hi, noise) -> bool:
    """Is frame ``j`` a bad measurement rather than a change? The old ``velocity`` from frame ``i``
    predicts frame ``j + 1`` better than the changed one (``v_changed``, from ``j``), and fits."""
    gap2 = idx[j + 1] - idx[j]
    err_change = np.linalg.norm(advance(P[j], v_changed, gap2, lo, hi)[0] - P[j + 1])
    pred2 = advance(P[i], velocity, idx[j + 1] - idx[i], lo, hi)[0]
    err_glitch = np.linalg.norm(pred2 - P[j + 1])
    return err_glitch < err_change and step_fits(
        pred2, P[j + 1], velocity, idx[j + 1] - idx[i], noise
    )[0]


def _angle(a, b) -> float:
    """Angle between two velocities, radians."""
    return float(
        np.arccos(np.clip(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9), -1, 1))
    )


def largest_turn(changes) -> tuple[int, np.ndarray] | None:
    """The largest change of direction ``(frame, before, after)`` if >= ``TURN_MIN_DEGREES``
    -> (frame, velocity after), else None."""
    if not changes:
        return None
    frame, before, after = max(changes, key=lambda c: _angle(c[1], c[2]))
    if np.degrees(_angle(before, after)) < TURN_MIN_DEGREES:
        return None
    return frame, after


def move_physics(f: FollowedTrack, steps: int, turned: bool, frames_seen, centers, events, unit):
    """The physics summary of a move / turn: steps the constant-velocity-with-bounces model
    predicts (the first step sets the velocity; the turn's step counts when it is a turn)."""
    consistent = len(f.speeds) + f.bounce_steps + turned
    return {
        "speed": float(np.median(f.speeds)) / unit,
        "prediction_error": float(np.mean(f.errors)) if f.errors else 0.0,  # per step, relative
        "steps": steps,
        "consistent_steps": int(consistent),
        "unexplained_changes": len(f.changes) - turned,
        "glitches": len(f.glitches),
        "bounces": len(f.bounces),
        "line_rms": pieces_rms(frames_seen, centers, events) / unit,
    }


def line_rms(t: np.ndarray, p: np.ndarray) -> float:
    """RMS residual of a straight-line fit p(t) (p [n, 2])."""
    if len(t) < 3:
        return 0.0
    A = np.stack([np.ones_like(t), t], 1)
    coef, *_ = np.linalg.lstsq(A, p, rcond=None)
    return float(np.sqrt(((A @ coef - p) ** 2).sum(1).mean()))


def pieces_rms(frames_seen, centers, events) -> float:
    """Largest RMS residual of straight-line fits between consecutive events."""
    cuts = sorted({ev["frame"] for ev in events}) + [int(frames_seen[-1]) + 1]
    worst, start = 0.0, 0
    for c in cuts:
        sel = (frames_seen >= start) & (frames_seen < c)
        worst = max(worst, line_rms(frames_seen[sel].astype(float), centers[sel]))
        start = c
    return worst
