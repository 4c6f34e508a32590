"""Scores of a video against its prompt: adherence per attribute, physics, consistency, framing.

``evaluate(video, target) -> dict`` where ``target`` is a caption (parsed with the caption grammar),
a ``CaptionSpec`` or a ``SceneSpec``. Every score is in [0, 1] (``None`` where the prompt does not
state the attribute, or an image cannot show it); ``overall`` is the mean of the stated ones.

Only **credible** detections count (``sora_mini.evaluate.credible``: one piece, a shape fits):
colour noise is reported under ``detected`` (``credible: false``) but is no object. A prompt
object without a credible match scores 0 on every attribute; a video without any credible object
scores 0 on every stated adherence attribute (the background too: an empty frame follows no
prompt), and 0 on physics (``None`` for an image), consistency and framing: nothing shown is no
evidence of physical, stable or well-framed objects.

* **Adherence**: credible objects are matched to prompt objects by colour first, then by the most
  agreeing attributes (Hungarian, ``scipy.optimize.linear_sum_assignment``). Per attribute: the
  share of prompt objects stating it whose match has it. ``event_time`` passes when the detected
  event frame is within ``event_tolerance(T)`` frames of the prompt's. ``count`` is 1 when as many
  objects are found as prompted. Motion attributes are skipped for images (T = 1).
* **Physics** (per object, by its detected motion): move / turn: share of frame steps a constant
  velocity with mirror bounces at the walls predicts (one change allowed for a turn); fall: the
  fitted gravity of a quadratic y(t) against the world's; others: share of frames at rest.
* **Consistency**: share of frames where the colour, the shape and the size agree with the object's
  own over the video, and where it does not flicker.
* **Framing**: share of frames in which each object's box lies inside the frame.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from sora_mini.evaluate.analyzer import Analysis, VideoAnalyzer
from sora_mini.world.captions import ATTRIBUTES, CaptionSpec, caption_attributes, parse_caption
from sora_mini.world.spec import GRAVITY, SceneSpec, event_frame

MOTION_ATTRIBUTES = ("motion", "direction", "speed", "direction2", "event_time")
SCORED = ("count", "background") + ATTRIBUTES


def event_tolerance(frames: int) -> int:
    """Frames by which a detected event may miss the prompt's: 10% of the duration, at least 1."""
    return max(1, round(0.1 * (frames - 1)))


def as_caption_spec(target) -> CaptionSpec:
    """A caption string, ``CaptionSpec`` or ``SceneSpec`` -> ``CaptionSpec``."""
    if isinstance(target, str):
        return parse_caption(target)
    if isinstance(target, SceneSpec):
        return caption_attributes(target)
    if isinstance(target, CaptionSpec):
        return target
    raise TypeError(
        f"target must be a caption, CaptionSpec or SceneSpec, got {type(target).__name__}"
    )


def _agrees(attr: str, want, det: dict, frames: int) -> bool:
    if attr == "event_time":
        f = det.get("event_frame")
        return f is not None and abs(f - event_frame(want, frames)) <= event_tolerance(frames)
    return det.get(attr) == want


def match_objects(prompt: CaptionSpec, detected: list[dict], frames: int) -> list[int | None]:
    """Per prompt object, the index of its detected object (or None): colour first, then rest."""
    if not detected or not prompt.objects:
        return [None] * len(prompt.objects)
    gain = np.zeros((len(prompt.objects), len(detected)))
    for i, p in enumerate(prompt.objects):
        for j, d in enumerate(detected):
            stated = p.stated()
            gain[i, j] = 100.0 * (stated.get("color") == d.get("color")) + sum(
                _agrees(a, w, d, frames) for a, w in stated.items() if a != "color"
            )
    rows, cols = linear_sum_assignment(-gain)
    out: list[int | None] = [None] * len(prompt.objects)
    for i, j in zip(rows, cols):
        out[i] = int(j)
    return out


def score_adherence(detected: list[dict], background: str | None, target, frames: int) -> dict:
    """Adherence of detected attributes (dicts with ATTRIBUTES + ``event_frame``) to the prompt.

    -> {"attributes": {name: score or None}, "overall", "matches": [...], "per_object": [...]}.
    ``detected`` holds the credible objects only; with none, every stated attribute scores 0.
    """
    prompt = as_caption_spec(target)
    matches = match_objects(prompt, detected, frames)
    sums = {a: [] for a in ATTRIBUTES}
    per_object = []
    for p, j in zip(prompt.objects, matches):
        d = detected[j] if j is not None else {}
        row = {}
        for a, want in p.stated().items():
            if frames == 1 and a in MOTION_ATTRIBUTES:
                continue
            ok = bool(j is not None and _agrees(a, want, d, frames))
            sums[a].append(ok)
            row[a] = ok
        per_object.append(row)
    scores = {a: (float(np.mean(v)) if v else None) for a, v in sums.items()}
    scores["count"] = float(len(detected) == len(prompt.objects))
    scores["background"] = (  # an empty frame follows no prompt, whatever its background
        None
        if prompt.background is None
        else float(bool(detected) and background == prompt.background)
    )
    scores = {a: scores[a] for a in SCORED}
    stated = [v for v in scores.values() if v is not None]
    return {
        "attributes": scores,
        "overall": float(np.mean(stated)),
        "matches": matches,
        "per_object": per_object,
    }


# ----------------------------------------------------------------------------------------------
# physics, consistency, framing (from the analysis alone)
# ----------------------------------------------------------------------------------------------
def _physics_score(o, unit: float) -> float | None:
    m, ph = o.motion, o.motion.physics
    if m.motion is None:
        return None
    if m.motion in ("move", "turn"):
        return float(ph.get("consistent_steps", 0) / max(ph.get("steps", 1), 1))
    if m.motion == "fall":
        g = ph.get("gravity")
        if g is None:
            return None
        return float(np.clip(1 - abs(g / GRAVITY - 1), 0.0, 1.0))
    c = o.center[o.reliable]
    if len(c) == 0:
        return None
    return float(np.mean(np.linalg.norm(c - np.median(c, axis=0), axis=1) < 0.02 * unit))


def _nothing(analysis: Analysis, per_image=0.0) -> dict:
    """The score of a video without a credible object: 0 (``per_image`` for an image)."""
    return {"score": per_image if analysis.frames == 1 else 0.0, "per_object": []}


def physics_scores(analysis: Analysis) -> dict:
    """Per credible object, how well its track follows the world's physics (module docstring)."""
    if not analysis.credible_objects:
        return _nothing(analysis, per_image=None)
    per = []
    for o in analysis.credible_objects:
        per.append(
            {
                "color": o.color,
                "motion": o.motion.motion,
                "score": _physics_score(o, analysis.unit),
                **o.motion.physics,
            }
        )
    vals = [p["score"] for p in per if p["score"] is not None]
    return {"score": float(np.mean(vals)) if vals else None, "per_object": per}


def consistency_scores(analysis: Analysis) -> dict:
    """Shares of frames where each object keeps its colour, shape and size and does not flicker."""
    if not analysis.credible_objects:
        return {**dict.fromkeys(_STABLE, 0.0), **_nothing(analysis)}
    rows = []
    for o in analysis.credible_objects:
        seen = np.flatnonzero(o.visible)
        span = np.zeros_like(o.visible)
        span[seen[0] : seen[-1] + 1] = True
        if o.motion.motion == "appear":
            span[: seen[0]] = True  # absent before the event is not a flicker
        if o.motion.motion == "disappear":
            span[seen[-1] :] = True
        presence = (
            float(np.mean((o.visible | o.hidden)[span]))
            if o.motion.motion not in ("appear", "disappear")
            else float(np.mean((o.visible | o.hidden) == _expected_presence(o)))
        )
        shapes = [s for s in o.frame_shapes if s is not None]
        shape = float(np.mean([s == o.shape for s in shapes])) if shapes else None
        ok = o.reliable & np.isfinite(o.half_extent_free)
        size = (
            float(np.mean(np.abs(o.half_extent_free[ok] / o.half_extent[ok] - 1) < 0.1))
            if ok.any()
            else None
        )
        color = float(np.mean(o.color_ok[o.visible])) if o.visible.any() else None
        rows.append(
            {
                "color": o.color,
                "color_stable": color,
                "shape_stable": shape,
                "size_stable": size,
                "presence_stable": presence,
            }
        )
    out = {k: _mean([r[k] for r in rows]) for k in _STABLE}
    out["score"] = _mean([out[k] for k in _STABLE])
    out["per_object"] = rows
    return out


_STABLE = ("color_stable", "shape_stable", "size_stable", "presence_stable")


def _expected_presence(o) -> np.ndarray:
    t = np.arange(len(o.visible))
    e = o.motion.event_frame
    return (t >= e) if o.motion.motion == "appear" else (t < e)


def framing_scores(analysis: Analysis) -> dict:
    """Share of frames in which each object's box is inside the frame (half a pixel of slack)."""
    if not analysis.credible_objects:
        return _nothing(analysis)
    rows = []
    for o in analysis.credible_objects:
        box = o.box[o.reliable]
        if len(box) == 0:
            rows.append({"color": o.color, "inside": None})
            continue
        inside = (
            (box[:, 0] >= -0.5)
            & (box[:, 1] >= -0.5)
            & (box[:, 2] <= analysis.width + 0.5)
            & (box[:, 3] <= analysis.height + 0.5)
        )
        rows.append({"color": o.color, "inside": float(inside.mean())})
    return {"score": _mean([r["inside"] for r in rows]), "per_object": rows}


def _mean(vals):
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def evaluate(video_or_analysis, target, analyzer: VideoAnalyzer | None = None) -> dict:
    """All scores of a video (uint8 [T, H, W, 3]) or ``Analysis`` against ``target``; JSON-able.

    ``detected`` lists every colour found (with ``credible``); only credible ones are scored.
    """
    a = video_or_analysis
    if not isinstance(a, Analysis):
        a = (analyzer or VideoAnalyzer()).analyze(a)
    objects = a.credible_objects
    detected = [{**o.attributes(), "event_frame": o.motion.event_frame} for o in objects]
    adherence = score_adherence(detected, a.background, target, a.frames)
    return {
        "size": {"frames": a.frames, "height": a.height, "width": a.width},
        "background": a.background,
        "credible_objects": len(objects),
        "detected": [o.to_dict() for o in a.objects],
        "adherence": adherence,
        "physics": physics_scores(a),
        "consistency": consistency_scores(a),
        "framing": framing_scores(a),
    }


def evaluate_video(video, caption: str, value_range: tuple[float, float] = (-1.0, 1.0)) -> dict:
    """The CLI's entry: a video and its caption -> a JSON-able dict of scores (``evaluate``).

    ``video``: uint8 ``[T, H, W, 3]`` as is; or floats (numpy or torch, ``[T, H, W, 3]`` or
    ``[3, T, H, W]``, see ``sora_mini.convert.to_uint8``) in ``value_range``, by default the
    model's ``[-1, 1]`` (what every decoder returns; pass ``(0, 1)`` for unit floats). Floats a
    little outside the range (a decoder's overshoot) are clipped to it, and the share clipped is
    reported as ``input.clipped``; values beyond the range by more than its width mean the range
    is wrong, and raise ``ValueError``.
    """
    from sora_mini.convert import to_uint8  # imports torch: only here, not with the analyzer

    video, clipped = _as_numpy(video), 0.0
    if video.dtype != np.uint8:
        lo, hi = value_range
        if video.size and (video.min() < lo - (hi - lo) or video.max() > hi + (hi - lo)):
            raise ValueError(
                f"video values span [{video.min():.3g}, {video.max():.3g}], far outside "
                f"value_range={value_range}; pass the range the video is in, e.g. (0, 1) for unit "
                "floats or (0, 255) for float pixels"
            )
        clipped = float(np.mean((video < lo) | (video > hi))) if video.size else 0.0
    video = to_uint8(video, value_range=value_range)  # uint8 keeps its values; [3, T, H, W] ok
    out = evaluate(video, caption)
    out["input"] = {"value_range": list(value_range), "clipped": clipped}
    return out


def _as_numpy(video) -> np.ndarray:
    """numpy or torch -> numpy, same layout; uint8 stays uint8, anything else becomes float32."""
    if hasattr(video, "detach"):  # a torch tensor
        video = video.detach().cpu()
        video = video.numpy() if str(video.dtype) == "torch.uint8" else video.float().numpy()
    video = np.asarray(video)
    return video if video.dtype == np.uint8 else video.astype(np.float32)
