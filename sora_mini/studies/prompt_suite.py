"""The held-out prompt suite: what the trained text-to-video model gets right, scored by the
evaluator from pixels, one table per group of prompts and attribute, with 95 % intervals.

Groups (``suite_prompts``):

* ``one_object``: the compositional hold-out (``sora_mini.train.video.holdout_combos``): a colour,
  shape and motion no training video showed together ("a cyan triangle moves up left"), at
  16:9, 9:16 and 1:1. ``all_three`` is colour, shape and motion (direction for movers) all right.
* ``two_objects``: two-object scenes of the world's distribution ("a red circle falls and a blue
  square moves right").
* ``events``: a motion with a moment in it ("moves right, then up", "falls", "appears").

``run_suite(pipe, config)`` generates and scores every prompt; ``summarize(rows)`` makes the table;
``load_or_run_suite(pipe_folder, scale)`` caches the rows under ``runs/<scale>/``;
``learning_curve(folder, scale)`` scores a subset at every snapshot of a training (notebook 06).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sora_mini.config import scale_preset
from sora_mini.evaluate.intervals import wilson_interval
from sora_mini.world import DIRECTIONS, sample_spec, spec_seed

GROUPS = ("one_object", "two_objects", "events")
VERBS = {"still": "stays still", "fall": "falls", "grow": "grows", "shrink": "shrinks", "appear": "appears",
         "disappear": "disappears"}
EVENT_MOTIONS = ("turn", "fall", "appear", "disappear")
ASPECTS = {"16:9": (32, 56), "9:16": (56, 32), "1:1": (32, 32)}


@dataclass(frozen=True)
class SuiteConfig:
    """How many prompts, at which sizes, sampled how."""

    seeds: int = 4  # samples per prompt (2 twice showed gains that 4-8 seeds took back: docs/training.md)
    two_objects: int = 16  # prompts in that group
    events: int = 16
    num_frames: int = 17
    steps: int = 8  # the pipeline's default (8 and 20 steps measured alike: docs/training.md)
    guidance_scale: float = 3.0
    holdout: int = 16  # must match the training's hold-out
    batch: int = 16


SUITE_PRESETS = {"tiny": SuiteConfig(seeds=1, two_objects=2, events=2, num_frames=9, steps=4, holdout=16, batch=8),
                 "small": SuiteConfig(), "base": SuiteConfig(seeds=4, two_objects=64, events=64, num_frames=33)}


def suite_config(scale, **overrides) -> SuiteConfig:
    return scale_preset(SUITE_PRESETS, scale, **overrides)


def one_object_prompt(color: str, shape: str, word: str) -> str:
    """"a red circle moves right" / "a red circle falls" for a (colour, shape, motion word) triple."""
    return f"a {color} {shape} moves {word}" if word in DIRECTIONS else f"a {color} {shape} {VERBS[word]}"


def suite_prompts(config: SuiteConfig, seed: int = 0) -> list[dict]:
    """Every prompt of the suite: ``{"group", "prompt", "aspect", "height", "width", "key"}`` where
    ``key`` names what ``all_three`` checks for one-object prompts."""
    from sora_mini.train.video import holdout_combos
    from sora_mini.world.captions import short_caption

    rows = []
    for color, shape, word in sorted(holdout_combos(config.holdout, seed)):
        for aspect, (h, w) in ASPECTS.items():
            rows.append({"group": "one_object", "prompt": one_object_prompt(color, shape, word), "aspect": aspect,
                         "height": h, "width": w, "key": "direction" if word in DIRECTIONS else "motion"})
    for i in range(config.two_objects):
        spec = sample_spec(spec_seed(seed + 7, i), min_objects=2, max_objects=2)
        rows.append({"group": "two_objects", "prompt": short_caption(spec), "aspect": "1:1", "height": 32, "width": 32})
    for i in range(config.events):
        spec = sample_spec(spec_seed(seed + 11, i), max_objects=1, motions=EVENT_MOTIONS)
        rows.append({"group": "events", "prompt": short_caption(spec), "aspect": "16:9", "height": 32, "width": 56})
    return rows


def run_suite(pipe, config: SuiteConfig, *, prompts: list[dict] | None = None, progress: bool = True) -> list[dict]:
    """Generate ``config.seeds`` videos of every prompt (in batches of one size) and score each:
    rows of the prompt's fields plus ``seed``, ``attributes`` (evaluator adherence per stated
    attribute), ``framing`` and, for one object, ``all_three``. ``prompts``: a subset of
    :func:`suite_prompts` (default all of them)."""
    from tqdm.auto import tqdm

    from sora_mini.evaluate import evaluate_video

    prompts = suite_prompts(config) if prompts is None else prompts
    jobs = [(p, s) for s in range(config.seeds) for p in prompts]
    by_size: dict = {}
    for job in jobs:
        by_size.setdefault((job[0]["height"], job[0]["width"], job[1]), []).append(job[0])
    rows = []
    bar = tqdm(total=len(jobs), desc="prompt suite", disable=not progress, leave=False)
    for (h, w, seed), group in by_size.items():
        for start in range(0, len(group), config.batch):
            chunk = group[start:start + config.batch]
            out = pipe([p["prompt"] for p in chunk], height=h, width=w, num_frames=config.num_frames,
                       num_inference_steps=config.steps, guidance_scale=config.guidance_scale,
                       seed=1000 * seed + start)
            for p, video in zip(chunk, out.videos):
                rows.append(score_row(p, seed, evaluate_video(video, p["prompt"])))
            bar.update(len(chunk))
    bar.close()
    return rows


def score_row(prompt: dict, seed: int, result: dict) -> dict:
    """One scored sample: the evaluator's attributes that the prompt states, framing, all three, and
    for one object ``read``: what the evaluator read off that object (:func:`object_reading`)."""
    attrs = {k: v for k, v in result["adherence"]["attributes"].items() if v is not None}
    row = {**prompt, "seed": seed, "attributes": attrs, "framing": result["framing"]["score"]}
    if prompt["group"] == "one_object":
        row["all_three"] = float(all(attrs.get(k, 0.0) == 1.0 for k in ("color", "shape", prompt["key"])))
        row["read"] = object_reading(result, prompt["prompt"])
    return row


def object_reading(result: dict, prompt: str) -> dict | None:
    """The motion and direction the evaluator read off the one object of ``prompt`` (the credible
    detection of its colour, else the first credible one; None if it found none)."""
    from sora_mini.world.captions import parse_caption

    found = [d for d in result.get("detected", []) if d.get("credible", True)]
    if not found:
        return None
    color = parse_caption(prompt).objects[0].color
    d = next((d for d in found if d.get("color") == color), found[0])
    return {"motion": d.get("motion"), "direction": d.get("direction")}


def mover_readings(rows: list[dict]) -> dict:
    """What the evaluator read off the one-object movers ("a red circle moves up"), split by whether
    their direction was scored right: ``{"right": {motion read: count}, "wrong": {...}, "n": N}``.
    A mover whose size drifts by more than the evaluator's 20 % is read as ``grow`` or ``shrink``
    and gets no direction at all. Rows cached before the suite recorded readings count as
    ``"not recorded"``."""
    out: dict = {"right": {}, "wrong": {}, "n": 0}
    for r in rows:
        if r["group"] != "one_object" or r.get("key") != "direction":
            continue
        side = "right" if r["attributes"].get("direction") == 1.0 else "wrong"
        if "read" not in r:
            motion = "not recorded"
        else:
            motion = (r["read"] or {}).get("motion") or "no object"
        out[side][motion] = out[side].get(motion, 0) + 1
        out["n"] += 1
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (group, aspect or "all", attribute): mean, n and the 95 % Wilson interval."""
    out = []
    for group in GROUPS:
        sub = [r for r in rows if r["group"] == group]
        if not sub:
            continue
        for aspect in ["all", *sorted({r["aspect"] for r in sub})] if group == "one_object" else ["all"]:
            part = sub if aspect == "all" else [r for r in sub if r["aspect"] == aspect]
            values: dict = {}
            for r in part:  # a score the evaluator could not give (None) is left out of its mean
                scores = {**r["attributes"], "framing": r["framing"], "all_three": r.get("all_three")}
                for k, v in scores.items():
                    if v is not None:
                        values.setdefault(k, []).append(v)
            for attr, vals in values.items():
                mean, n = float(np.mean(vals)), len(vals)
                lo, hi = wilson_interval(mean * n, n)
                out.append({"group": group, "aspect": aspect, "attribute": attr, "mean": mean, "n": n,
                            "low": lo, "high": hi})
    return out


@dataclass(frozen=True)
class _Scored:
    """What a cached result is keyed by: the pipeline folder and the suite."""

    pipeline: str
    suite: SuiteConfig


def load_or_run_suite(pipe_folder, scale, *, run_root="runs", retrain: bool = False, progress: bool = True,
                      device="cpu", **overrides) -> list[dict]:
    """The scored rows for the pipeline in ``pipe_folder``, cached as
    ``<run_root>/<scale>/prompt_suite-<hash>/rows.json`` (``retrain=True`` scores again)."""
    from sora_mini.artifacts.store import part_dir
    from sora_mini.checkpoint import atomic_write
    from sora_mini.pipeline import SoraMiniPipeline

    config = suite_config(scale, **overrides)
    name = getattr(scale, "name", scale)
    path = part_dir(run_root, name, "prompt_suite", _Scored(str(Path(pipe_folder).resolve()), config)) / "rows.json"
    if path.is_file() and not retrain:
        rows = json.loads(path.read_text())
        if all("read" in r for r in rows if r["group"] == "one_object"):
            return rows  # (rows cached before the suite kept the evaluator's readings are scored again)
    rows = run_suite(SoraMiniPipeline.from_pretrained(pipe_folder, device=device), config, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return rows


# ----------------------------------------------------------------------------------------------
# The learning curve: adherence per attribute at every snapshot of a training
# ----------------------------------------------------------------------------------------------
CURVE_PROMPTS = {"tiny": 4, "small": 16, "base": 16}  # one-object prompts scored per snapshot


def curve_prompts(config: SuiteConfig, prompts: int, aspect: str = "1:1") -> list[dict]:
    """The first ``prompts`` one-object (held-out) prompts of the suite at ``aspect``."""
    if aspect not in ASPECTS:
        raise ValueError(f"aspect {aspect!r} is not one of the suite's: {', '.join(ASPECTS)}")
    rows = [p for p in suite_prompts(config) if p["group"] == "one_object" and p["aspect"] == aspect]
    if not 1 <= prompts <= len(rows):
        raise ValueError(f"prompts={prompts}: the suite has {len(rows)} one-object prompts at {aspect}; "
                         f"pick 1 to {len(rows)}")
    return rows[:prompts]


@dataclass(frozen=True)
class _Curve:
    """What a cached learning curve is keyed by: the training folder, its snapshots, the prompts."""

    pipeline: str
    steps: tuple
    suite: SuiteConfig
    prompts: int
    aspect: str


def learning_curve(folder, scale, *, run_root="runs", prompts: int | None = None, aspect: str = "1:1",
                   retrain: bool = False, progress: bool = True, device="cpu", **overrides) -> list[dict]:
    """Adherence per attribute against training time: the pipeline in ``folder`` with each of its
    snapshots (``sora_mini.artifacts.video.snapshot_dirs``) as the transformer, and those of the
    stages it was trained from (``stage_chain``: steps and seconds counted from the first stage's
    start, ``stage`` 1, 2, ...), on the first
    ``prompts`` held-out one-object prompts at ``aspect`` (``CURVE_PROMPTS`` by scale) with the
    suite's seeds, so every snapshot sees the same prompts and noise. Rows of :func:`summarize`
    (one per attribute, with its Wilson interval) plus ``step`` and ``train_seconds``; cached as
    ``<run_root>/<scale>/learning_curve-<hash>/rows.json`` (``retrain=True`` scores again)."""
    from sora_mini.artifacts.stages import stage_snapshots
    from sora_mini.artifacts.store import part_dir
    from sora_mini.artifacts.video import load_snapshot
    from sora_mini.checkpoint import atomic_write
    from sora_mini.pipeline import SoraMiniPipeline

    snapshots = stage_snapshots(folder)
    if not snapshots:
        raise FileNotFoundError(f"{folder} has no snapshots/: train it with snapshot_every=n "
                                "(sora_mini.pipeline.train_pipeline(..., snapshot_every=n, retrain=True))")
    config = suite_config(scale, **overrides)
    name = getattr(scale, "name", scale)
    count = CURVE_PROMPTS.get(name, CURVE_PROMPTS["small"]) if prompts is None else prompts
    subset = curve_prompts(config, count, aspect)
    steps = [s.step for s in snapshots]
    key = _Curve(str(Path(folder).resolve()), tuple(steps), config, count, aspect)
    path = part_dir(run_root, name, "learning_curve", key) / "rows.json"
    if path.is_file() and not retrain:
        return json.loads(path.read_text())
    pipe = SoraMiniPipeline.from_pretrained(folder, device=device)
    rows = []
    for snap in snapshots:
        load_snapshot(pipe, snap.folder, device=device)
        scored = run_suite(pipe, config, prompts=subset, progress=progress)
        rows += [{**r, "step": snap.step, "train_seconds": snap.seconds, "stage": snap.stage}
                 for r in summarize(scored) if r["aspect"] == "all"]
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(rows)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return rows
