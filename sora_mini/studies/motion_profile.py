"""Where generated movers go wrong: the tracked object's speed across the clip, model against world.

The evaluator reads most generated movers as a ``turn`` rather than a ``move``. This study shows
why, in pixels per frame: for a few one-object prompts, each stated fully (``extend=False``, so the
start region, size and speed are what the prompt says), it tracks the object (``VideoAnalyzer``)
in videos the pipeline generates and in the world's own renderings of the same caption, and
averages the frame-to-frame displacement over early, middle and late windows of the clip.

The world moves an object at constant speed and mirrors it at a wall without losing speed, so
its profile is flat (but for the one step that straddles a bounce, whose net displacement is
shorter than the path: at small the world's middle window reads 0.91 on average, 0.96 elsewhere); a profile
that falls shows a model that slows down, and the case where a bounce is due (a large object from
the centre meets the wall about halfway) shows whether it bounces or stops.

The same tracks give the object's size. The world never changes an object's size unless it grows or
shrinks; a generated mover's size breathes from frame to frame, and where the evaluator's linear fit
of its half-extent ends more than 20 % above or below where it starts (``GROW_RATIO``), the mover is
read as ``grow`` or ``shrink`` and gets no direction at all: most of the suite's mover misses.

``run_profile(pipe, config)`` -> rows (case, source model / world, seed, the windows' px per
frame, the size's wobble and drift, the evaluator's motion reading); ``summarize_profile(rows)`` ->
one line per (case, source).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sora_mini.config import scale_preset
from sora_mini.evaluate.motion import GROW_RATIO

BOUNCE = "a large red circle starts in the center and moves right slowly. the background is black."
ACROSS = "a small red circle starts at the left and moves right slowly. the background is black."
DOWN = "a small red circle starts at the top and moves down slowly. the background is black."


@dataclass(frozen=True)
class ProfileConfig:
    """Prompts (name, caption), samples of each, the clip, and the windows (frame steps [a, b))."""

    cases: tuple[tuple[str, str], ...] = (("bounce due (large, centre, right)", BOUNCE),
                                          ("no wall (small, left, right)", ACROSS),
                                          ("no wall (small, top, down)", DOWN))
    seeds: int = 4  # batches of `batch` samples per case; world renders: seeds * batch scenes
    batch: int = 4
    height: int = 32
    width: int = 32
    num_frames: int = 17
    windows: tuple[tuple[int, int], ...] = ((0, 5), (5, 11), (11, 16))


PROFILE_PRESETS = {"tiny": ProfileConfig(seeds=1, batch=2, num_frames=9, windows=((0, 3), (3, 5), (5, 8))),
                   "small": ProfileConfig(),
                   "base": ProfileConfig(height=64, width=64, num_frames=33,
                                         windows=((0, 10), (10, 22), (22, 32)))}


def profile_config(scale, **overrides) -> ProfileConfig:
    return scale_preset(PROFILE_PRESETS, scale, **overrides)


def speed_profile(video: np.ndarray, windows, analyzer=None) -> dict | None:
    """The first credible object's mean displacement (px per frame) in each window of frame steps,
    its size (:func:`size_change`) and the evaluator's motion reading; None when no object is found.
    Shapes: video uint8 [T, H, W, 3]."""
    from sora_mini.evaluate import VideoAnalyzer

    objects = (analyzer or VideoAnalyzer()).analyze(video).credible_objects
    if not objects:
        return None
    steps = np.linalg.norm(np.diff(objects[0].center, axis=0), axis=1)  # [T - 1]
    if max(b for _, b in windows) > len(steps):
        raise ValueError(f"windows {windows} reach past the {len(steps)} frame steps of a {len(video)}-frame clip")
    with np.errstate(all="ignore"):  # a window of unmeasured frames is nan
        speeds = [float(np.nanmean(steps[a:b])) for a, b in windows]
    return {"speeds": speeds, "motion": objects[0].motion.motion, **size_change(objects[0].half_extent_free)}


def size_change(half_extent: np.ndarray) -> dict:
    """How an object's size changes over a clip, from its half-extent measured in each frame on its
    own (``ObjectAnalysis.half_extent_free``; nan where not measured): ``sizes``, half-extent / its
    median in every frame (nan where not measured), ``size_wobble``, their std over the measured frames
    (0 for a constant size), and ``size_drift``, end / start of a straight line fitted through them
    (nan with fewer than two frames). The drift is the evaluator's test, which reads ``grow`` above
    1.2 and ``shrink`` below 1 / 1.2 (``evaluate.motion.GROW_RATIO``), on these per-frame
    measurements; the evaluator fits its shape model's half-extent over the frames where the object
    is reliably seen, so the two can differ slightly."""
    r = np.asarray(half_extent, dtype=float)
    frames = np.flatnonzero(np.isfinite(r) & (r > 0))
    if len(frames) < 2:
        return {"sizes": [float("nan")] * len(r), "size_wobble": float("nan"), "size_drift": float("nan")}
    sizes = np.full(len(r), np.nan)
    sizes[frames] = r[frames] / np.median(r[frames])
    slope, start = np.polyfit(frames.astype(float), sizes[frames], 1)
    end = start + slope * (len(r) - 1)
    return {"sizes": sizes.tolist(), "size_wobble": float(sizes[frames].std()), "size_drift": float(end / start)}


def run_profile(pipe, config: ProfileConfig, *, progress: bool = True) -> list[dict]:
    """Rows of ``speed_profile`` for every case: ``seeds`` batches from the pipeline and as many
    world renderings of the parsed caption (scene seeds 0, 1, ...)."""
    from tqdm.auto import tqdm

    from sora_mini.evaluate import VideoAnalyzer
    from sora_mini.world import render
    from sora_mini.world.captions import parse_caption

    analyzer, rows = VideoAnalyzer(), []
    size = {"height": config.height, "width": config.width, "num_frames": config.num_frames}
    for name, prompt in tqdm(config.cases, desc="motion profile", disable=not progress, leave=False):
        spec = parse_caption(prompt)
        for seed in range(config.seeds):
            out = pipe([prompt] * config.batch, seed=seed, extend=False, **size)
            for i, video in enumerate(out.videos):
                world = render(spec.to_scene_spec(seed=seed * config.batch + i), config.height, config.width,
                               config.num_frames)[0]
                for source, clip in (("model", video), ("world", world)):
                    read = speed_profile(clip, config.windows, analyzer)
                    if read is not None:
                        rows.append({"case": name, "source": source, "seed": seed, "sample": i, **read})
    return rows


def summarize_profile(rows: list[dict]) -> list[dict]:
    """One line per (case, source): the mean px per frame of each window, its std over samples, the
    mean size wobble, the share whose size drifts past the evaluator's 20 %, the share read as a
    ``move``, and n."""
    out = []
    for case in dict.fromkeys(r["case"] for r in rows):
        for source in ("model", "world"):
            part = [r for r in rows if r["case"] == case and r["source"] == source]
            if not part:
                continue
            speeds = np.array([r["speeds"] for r in part], dtype=float)  # [n, windows]
            wobble = np.array([r.get("size_wobble", np.nan) for r in part], dtype=float)
            drift = np.array([r.get("size_drift", np.nan) for r in part], dtype=float)
            with np.errstate(all="ignore"):  # rows cached before sizes were recorded: nan
                out.append({"case": case, "source": source, "n": len(part),
                            "speeds": np.nanmean(speeds, axis=0).round(3).tolist(),
                            "speeds_std": np.nanstd(speeds, axis=0).round(3).tolist(),
                            "size_wobble": round(float(np.nanmean(wobble)), 4),
                            "size_drifted": float(np.mean((drift > GROW_RATIO) | (drift < 1 / GROW_RATIO))),
                            "move": float(np.mean([r["motion"] == "move" for r in part]))})
    return out


def profile_markdown(summary: list[dict], config: ProfileConfig) -> str:
    """The summary as a markdown table (px per frame in each window, mean ± std)."""
    heads = [f"steps {a + 1}-{b}" for a, b in config.windows]
    lines = [f"| case | source | {' | '.join(heads)} | size wobble | size drift > 20 % | read as `move` | n |",
             "|---|---|" + "---:|" * (len(heads) + 4)]
    for s in summary:
        cells = " | ".join(f"{m:.2f} ± {d:.2f}" for m, d in zip(s["speeds"], s["speeds_std"]))
        lines.append(f"| {s['case']} | {s['source']} | {cells} | {s['size_wobble']:.3f} | {s['size_drifted']:.2f} "
                     f"| {s['move']:.2f} | {s['n']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``sora-mini study motion-profile [--scale S | --model PATH]``: the table, and the rows as JSON."""
    import argparse
    import json
    from pathlib import Path

    from sora_mini.config import resolve_device
    from sora_mini.pipeline import SoraMiniPipeline, resolve_pipeline_dir

    p = argparse.ArgumentParser(prog="sora-mini study motion-profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="small", help="the pipeline trained under --run-root, else the shipped one")
    p.add_argument("--model", help="a pipeline folder instead of --scale's")
    p.add_argument("--run-root", default="runs")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    folder = resolve_pipeline_dir(args.model or args.scale, run_root=args.run_root)
    config = profile_config(args.scale)
    rows = run_profile(SoraMiniPipeline.from_pretrained(folder, device=resolve_device(args.device)), config)
    print(f"pipeline {folder}: px per frame of the tracked object, mean ± std over samples")
    print(profile_markdown(summarize_profile(rows), config))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows))
