"""The measurements behind notebook 08's prompting modes: what one output of a mode is scored by
(``i2v_row``, ``extension_row``, ``connect_row``, ``edit_row``, ``inpaint_row``, ``long_row`` and
their helpers), and the summaries of a whole run against the targets (:data:`TARGETS`,
``summary``, ``edit_curve``). The inputs and the runs are :mod:`sora_mini.studies.prompting_modes`.
"""

from __future__ import annotations

import numpy as np

from sora_mini.evaluate.intervals import bootstrap_interval, wilson_interval
from sora_mini.modes import (
    first_frame_psnr,
    frame_steps,
    hold_fill,
)


# ----------------------------------------------------------------------------------------------
# The measurements of one output
# ----------------------------------------------------------------------------------------------
def motion_read(video: np.ndarray, prompt: str) -> dict:
    """The evaluator on ``video`` uint8 [T, H, W, 3] against ``prompt``: ``followed`` (1 when every
    stated motion attribute, motion and direction, is right, else 0), ``direction``, ``physics``."""
    from sora_mini.evaluate import evaluate_video

    result = evaluate_video(video, prompt)
    attrs = result["adherence"]["attributes"]
    stated = [attrs[a] for a in ("motion", "direction") if attrs.get(a) is not None]
    return {"followed": float(bool(stated) and all(v == 1.0 for v in stated)), "direction": attrs["direction"],
            "physics": result["physics"]["score"]}


def i2v_row(pipe, video: np.ndarray, image: np.ndarray, prompt: str) -> dict:
    """Image-to-video: ``first_psnr`` (dB) of the first frame to ``image`` [H, W, 3], ``recon_psnr``
    of the autoencoder's own reconstruction of it, ``gap`` = recon - first (target <= 1 dB), and
    the prompt's motion read from the video (``motion_read``)."""
    from sora_mini.evaluate.image_metrics import psnr

    first = first_frame_psnr(video, image)
    recon = float(psnr(pipe.reconstruct(image[None])[0, 0], image)[0])
    return {"first_psnr": first, "recon_psnr": recon, "gap": recon - first, **motion_read(video, prompt)}


def step_ratio(video: np.ndarray, at: list[int]) -> float:
    """The largest frame step at indices ``at`` (step i: frame i to i + 1) over the median of the
    other steps (mean absolute change, uint8 levels): 1 = a seam as smooth as the rest."""
    steps = frame_steps(video)
    others = np.delete(steps, at)
    median = float(np.median(others)) if len(others) else 0.0
    return float(steps[at].max() / median) if median > 0 else float("inf")


def joined_clip(clip: np.ndarray, video: np.ndarray, given_frames: list[int], direction: str) -> np.ndarray:
    """The clip with its extension's new frames (those not in ``given_frames``) after it (forward)
    or before it (backward): [T_clip + new, H, W, 3]."""
    new = np.delete(video, given_frames, axis=0)
    return np.concatenate([clip, new] if direction == "forward" else [new, clip])


def extension_row(clip: np.ndarray, video: np.ndarray, given_frames: list[int], direction: str,
                  prompt: str) -> dict:
    """An extension: the evaluator on the joined clip (``direction`` kept, ``followed``,
    ``physics``), on the new frames alone (``new_direction``: the stricter reading, since the joined
    clip is mostly the given one) and the step across the seam over the median step (``seam_ratio``)."""
    joined = joined_clip(clip, video, given_frames, direction)
    seam = len(clip) - 1 if direction == "forward" else len(joined) - len(clip) - 1
    new = np.delete(video, given_frames, axis=0)
    return {"frames": len(joined), "seam_ratio": step_ratio(joined, [seam]), **motion_read(joined, prompt),
            "new_direction": motion_read(new, prompt)["direction"]}


def connect_row(pipe, video: np.ndarray, info: dict, first: np.ndarray, second: np.ndarray) -> dict:
    """A connection: ``end_psnr`` (dB, mean over the last ``tail_frames``) to the second clip's first
    frames, ``recon_psnr`` of the autoencoder's reconstruction of the given canvas there, ``gap`` =
    recon - end (target <= 1 dB; the pipeline returns the given frames as that reconstruction);
    ``start_psnr`` of the first frames to the first clip's end; ``seam_ratio``, the step from the
    last generated frame into the given end over the median frame step (what joining costs)."""
    from sora_mini.evaluate.image_metrics import psnr

    head, tail = info["head_frames"], info["tail_frames"]
    canvas = hold_fill(len(video), info["given_frames"], np.concatenate([first[len(first) - head:], second[:tail]]))
    end = float(psnr(video[-tail:], second[:tail]).mean())
    recon = float(psnr(pipe.reconstruct(canvas)[0, -tail:], second[:tail]).mean())
    start = float(psnr(video[:head], first[len(first) - head:]).mean())
    steps = frame_steps(video)
    return {"end_psnr": end, "recon_psnr": recon, "gap": recon - end, "start_psnr": start,
            "seam_ratio": float(steps[len(video) - tail - 1] / max(float(np.median(steps)), 1e-9))}


def edit_row(video: np.ndarray, clip: np.ndarray, prompt: str) -> dict:
    """SDEdit: ``faithfulness`` (mean PSNR in dB to the input ``clip``), ``adherence`` (the
    evaluator's overall score against the edited ``prompt``) and ``color`` (its colour score)."""
    from sora_mini.evaluate import evaluate_video
    from sora_mini.evaluate.image_metrics import psnr

    adherence = evaluate_video(video, prompt)["adherence"]
    return {"faithfulness": float(psnr(video, clip).mean()), "adherence": adherence["overall"],
            "color": adherence["attributes"]["color"]}


def inpaint_row(video: np.ndarray, clip: np.ndarray, box) -> dict:
    """Inpainting: the largest change outside ``box`` (uint8 levels; 0 = unchanged) and the mean
    change inside it."""
    y0, x0, y1, x1 = box
    inside = np.zeros(clip.shape[1:3], dtype=bool)
    inside[y0:y1, x0:x1] = True
    diff = np.abs(video.astype(np.int16) - clip.astype(np.int16))  # [T, H, W, 3]
    return {"outside_max_diff": int(diff[:, ~inside].max(initial=0)), "inside_mean_diff": float(diff[:, inside].mean())}


def segment_boundaries(info: dict) -> list[int]:
    """The frame steps of a long video (``long_video``'s ``info``) into each later segment's first
    generated frame: the segment's start plus its given frames, minus one."""
    need = len(info["given_frames"])
    return [start + need - 1 for start in info["segment_starts"][1:]]


def long_row(video: np.ndarray, info: dict, prompt: str) -> dict:
    """A long video: the largest step into a new segment's first generated frame over the median
    step (``boundary_ratio``) and the evaluator on the whole video."""
    at = segment_boundaries(info)
    ratio = step_ratio(video, at) if at else 1.0
    return {"frames": len(video), "boundary_ratio": ratio, **motion_read(video, prompt)}


# ----------------------------------------------------------------------------------------------
# Summaries
# ----------------------------------------------------------------------------------------------
# (mode, label, row filter, field, kind, target): kind "rate" (a share, Wilson interval), "mean"
# (bootstrap interval) or "max"; target (">=" or "<=", value) or None where none is set
TARGETS = (
    ("i2v", "first frame: reconstruction PSNR - PSNR to the image (dB)", None, "gap", "mean", ("<=", 1.0)),
    ("i2v", "the prompt's motion followed (evaluator)", None, "followed", "rate", (">=", 0.9)),
    ("extend", "forward: direction kept over the joined clip", ("direction_of_extension", "forward"), "direction",
     "rate", (">=", 0.9)),
    ("extend", "backward: direction kept over the joined clip", ("direction_of_extension", "backward"),
     "direction", "rate", (">=", 0.9)),
    ("extend", "forward: direction of the new frames alone", ("direction_of_extension", "forward"), "new_direction",
     "rate", None),
    ("extend", "backward: direction of the new frames alone", ("direction_of_extension", "backward"),
     "new_direction", "rate", None),
    ("extend", "control: direction read on the world's own video", ("direction_of_extension", "forward"),
     "truth_direction", "rate", None),
    ("extend", "seam step / median step", None, "seam_ratio", "mean", None),
    ("connect", "last frames: reconstruction PSNR - PSNR to the target (dB)", None, "gap", "mean", ("<=", 1.0)),
    ("connect", "step into the given end / median step", None, "seam_ratio", "mean", None),
    ("loop", "seam step / median step", None, "ratio", "mean", ("<=", 1.5)),
    ("inpaint", "largest change outside the box (levels)", None, "outside_max_diff", "max", ("<=", 0)),
    ("long", "step into a segment / median step", None, "boundary_ratio", "mean", None),
    ("long", "direction kept over the whole video", None, "direction", "rate", None),
)


def _figure(values: list[float], kind: str) -> tuple[float, float, float]:
    """(value, low, high) of ``values``: a rate with its Wilson interval, a mean with its bootstrap
    interval, or the maximum (no interval)."""
    v = np.asarray(values, dtype=np.float64)
    if kind == "rate":
        return (float(v.mean()), *wilson_interval(float(v.sum()), len(v)))
    if kind == "max":
        return float(v.max()), float(v.max()), float(v.max())
    if not np.isfinite(v).all():
        return float(v.mean()), float("nan"), float("nan")
    return (float(v.mean()), *bootstrap_interval(v))


def summary(result: dict) -> list[dict]:
    """One line per :data:`TARGETS` entry: ``mode``, ``measure``, ``value``, ``low``, ``high``
    (95 %), ``n``, ``target`` (text, "" where none) and ``met`` (None where no target); plus the
    edit at its smallest and largest strength (no target: a trade-off, see ``edit_curve``)."""
    out = []
    for mode, label, where, field, kind, target in TARGETS:
        rows = [r for r in result["rows"][mode] if where is None or r[where[0]] == where[1]]
        values = [0.0 if r[field] is None else r[field] for r in rows]
        value, low, high = _figure(values, kind)
        met = None if target is None else (value >= target[1] if target[0] == ">=" else value <= target[1])
        out.append({"mode": mode, "measure": label, "value": value, "low": low, "high": high, "n": len(rows),
                    "target": "" if target is None else f"{target[0]} {target[1]:g}", "met": met})
    curve = edit_curve(result)
    for point, field, label in ((curve[0], "faithfulness", "faithfulness, PSNR to the input (dB)"),
                                (curve[-1], "color", "colour changed to the edit's (evaluator)")):
        out.append({"mode": "edit", "measure": f"strength {point['strength']:g}: {label}",
                    "value": point[field], "low": point[f"{field}_low"], "high": point[f"{field}_high"],
                    "n": point["n"], "target": "", "met": None})
    return out


def edit_curve(result: dict) -> list[dict]:
    """The SDEdit trade-off, one point per strength (ascending): ``faithfulness`` (dB) and
    ``adherence`` with their std over scenes x seeds, ``color`` with its Wilson interval, and a
    bootstrap interval of each mean (``<field>_low`` / ``_high``)."""
    by: dict = {}
    for r in result["rows"]["edit"]:
        by.setdefault(r["strength"], []).append(r)
    curve = []
    for strength in sorted(by):
        rows = by[strength]
        point = {"strength": strength, "n": len(rows)}
        for field, kind in (("faithfulness", "mean"), ("adherence", "mean"), ("color", "rate")):
            values = [0.0 if r[field] is None else r[field] for r in rows]
            point[field], point[f"{field}_low"], point[f"{field}_high"] = _figure(values, kind)
            point[f"{field}_std"] = float(np.std(values))
        curve.append(point)
    return curve
