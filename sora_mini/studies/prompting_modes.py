"""Every prompting mode of the trained pipeline measured on world inputs (notebook 08): does each
keep what it is given and generate what it is asked?

The inputs are world scenes of one circle moving slowly (``mode_scenes``: a slow mover bounces
rarely, so a direction read over a joined clip is the prompt's; scenes showing a held-out
combination, or whose recoloured edit would, are skipped). The pipeline gets each scene's
detailed caption as it is (``extend=False``), so the generated frames agree with the given ones on
what the short prompt leaves out (size, region, background); the evaluator scores the short one.

Per mode, over ``prompts`` scenes x ``seeds`` noise seeds (the targets of :data:`TARGETS`):

* ``i2v``: the first frame's PSNR to the given image against the autoencoder's own reconstruction
  PSNR of it (``gap`` in dB, <= 1), and the prompt's motion followed (motion and direction right);
* ``extend`` forward and backward: the direction kept over the clip joined to its extension; the
  same evaluator on the world's own video of that length is the control (what it can read at all);
* ``connect``: the last frames' PSNR to the target clip against the reconstruction's (``gap``);
* ``loop``: the seam step (last frame back to the first) over the median frame step;
* ``edit`` (SDEdit, "make the circle blue"): faithfulness (PSNR to the input) and adherence to the
  recoloured prompt at each ``strength``: the trade-off curve (``edit_curve``);
* ``inpaint``: the largest change outside the box (0 exactly) and the mean change inside;
* ``long``: the largest step into a new segment over the median step, and the direction kept.

``run_modes(pipe, config)``; ``load_or_run(pipe_folder, scale)`` caches the result as
``runs/<scale>/prompting_modes-<hash>/result.json``; ``summary(result)``: each mode's figure with
its 95 % interval against its target.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from sora_mini.config import scale_preset
from sora_mini.evaluate.intervals import bootstrap_interval, wilson_interval
from sora_mini.modes import (
    DEFAULT_OVERLAP,
    conditioning_masks,
    first_frame_psnr,
    frame_steps,
    hold_fill,
)


@dataclass(frozen=True)
class ModesConfig:
    """What the measurements generate; ``None`` takes the pipeline's default (``SamplingDefaults``)."""

    prompts: int = 6  # world scenes
    seeds: int = 3  # noise seeds per scene
    height: int = 32
    width: int = 32
    num_frames: int = 17
    steps: int | None = None
    guidance_scale: float | None = None
    strengths: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    edit_color: str = "blue"  # "make the circle blue"
    box: tuple[int, int, int, int] = (8, 8, 24, 24)  # inpainting (y0, x0, y1, x1), pixels
    segments: int = 3  # long videos
    holdout: int = 16  # must match the training's hold-out (as the prompt suite's)
    scene_seed: int = 0

    def __post_init__(self):
        if self.prompts < 1 or self.seeds < 1:
            raise ValueError(f"prompts={self.prompts}, seeds={self.seeds}: both must be >= 1")
        if not self.strengths or not all(0.0 <= s <= 1.0 for s in self.strengths):
            raise ValueError(f"strengths {self.strengths} must be values in [0, 1] (0 = the input, 1 = pure noise)")


MODES_PRESETS = {"tiny": ModesConfig(prompts=2, seeds=2, num_frames=9, steps=4, strengths=(0.1, 0.4, 0.7, 1.0)),
                 "small": ModesConfig(),
                 "base": ModesConfig(prompts=8, height=64, width=64, num_frames=33, box=(16, 16, 48, 48))}


def modes_config(scale, **overrides) -> ModesConfig:
    return scale_preset(MODES_PRESETS, scale, **overrides)


# ----------------------------------------------------------------------------------------------
# The world inputs
# ----------------------------------------------------------------------------------------------
def mode_scenes(config: ModesConfig) -> list:
    """``config.prompts`` one-object scenes (SceneSpec): a circle moving slowly, not of the edit
    colour, neither it nor its recoloured edit a held-out combination."""
    from sora_mini.train.video import combo_of, holdout_combos
    from sora_mini.world import sample_spec, spec_seed

    held = holdout_combos(config.holdout, 0)
    scenes, i = [], 0
    while len(scenes) < config.prompts:
        spec = sample_spec(spec_seed(config.scene_seed + 17, i), max_objects=1,
                           fix={"shape": "circle", "motion": "move", "speed": "slowly"})
        i += 1
        (obj,) = spec.objects
        combos = {combo_of(obj), combo_of(recolored(spec, config.edit_color).objects[0])}
        if obj.color != config.edit_color and not combos & held:
            scenes.append(spec)
    return scenes


def recolored(spec, color: str):
    """The scene with its first object in ``color`` (the edit's prompt: "make the circle blue")."""
    first = replace(spec.objects[0], color=color)
    return replace(spec, objects=[first, *spec.objects[1:]])


def prompts_of(spec) -> dict:
    """{"prompt": the short caption (what the evaluator scores), "caption": the detailed one
    (what the pipeline is given)}."""
    from sora_mini.world.captions import detailed_caption, short_caption

    return {"prompt": short_caption(spec), "caption": detailed_caption(spec)}


def render_clip(spec, config: ModesConfig, frames: int) -> np.ndarray:
    """The scene's world video, uint8 [frames, H, W, 3]."""
    from sora_mini.world import render

    return render(spec, config.height, config.width, frames)[0]


def options(config: ModesConfig, seed: int, **more) -> dict:
    """The sampling options of one generation (the detailed caption passed as it is)."""
    return {"num_inference_steps": config.steps, "guidance_scale": config.guidance_scale, "seed": seed,
            "extend": False, **more}


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
    recon - end (target <= 1 dB); ``start_psnr`` of the first frames to the first clip's end."""
    from sora_mini.evaluate.image_metrics import psnr

    head, tail = info["head_frames"], info["tail_frames"]
    canvas = hold_fill(len(video), info["given_frames"], np.concatenate([first[len(first) - head:], second[:tail]]))
    end = float(psnr(video[-tail:], second[:tail]).mean())
    recon = float(psnr(pipe.reconstruct(canvas)[0, -tail:], second[:tail]).mean())
    start = float(psnr(video[:head], first[len(first) - head:]).mean())
    return {"end_psnr": end, "recon_psnr": recon, "gap": recon - end, "start_psnr": start}


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
# The inputs of the modes that take clips, from the world's own longer video
# ----------------------------------------------------------------------------------------------
def extension_clips(spec, config: ModesConfig, temporal_factor: int, direction: str):
    """(world, given): the world's video of the joined length [2T - kept, H, W, 3] and the clip of
    T frames an extension in ``direction`` is given (its start forward, its end backward), so the
    world's video is the truth the joined clip should look like."""
    masks = conditioning_masks("extend", config.num_frames, temporal_factor, overlap=DEFAULT_OVERLAP["extend"],
                               direction=direction)
    T = config.num_frames
    world = render_clip(spec, config, 2 * T - int(masks.kept.sum()))
    return world, (world[:T] if direction == "forward" else world[len(world) - T:])


def connect_clips(spec, config: ModesConfig, temporal_factor: int):
    """(first, second) clips of T frames from one world video, as far apart as a connection of T
    frames spans, so the true connection continues the first into the second."""
    masks = conditioning_masks("connect", config.num_frames, temporal_factor, overlap=DEFAULT_OVERLAP["connect"])
    head, tail = int(np.argmax(~masks.kept)), int(np.argmax(~masks.kept[::-1]))  # given frames at each end
    T = config.num_frames
    world = render_clip(spec, config, 3 * T - head - tail)
    return world[:T], world[2 * T - head - tail:]


# ----------------------------------------------------------------------------------------------
# Each mode on one scene and seed: measure_<mode>(pipe, spec, config, seed, p, clip) -> rows of
# the measurements above (p: the scene's prompts, clip: its world video of T frames)
# ----------------------------------------------------------------------------------------------
def measure_i2v(pipe, spec, config, seed, p, clip):
    out = pipe.image_to_video(p["caption"], clip[0], **options(config, seed, num_frames=config.num_frames))
    return [i2v_row(pipe, out.video, clip[0], p["prompt"])]


def measure_extend(pipe, spec, config, seed, p, clip):
    rows = []
    for direction in ("forward", "backward"):
        world, given = extension_clips(spec, config, pipe.vae.temporal_factor, direction)
        out = pipe.extend(p["caption"], given, direction=direction,
                          **options(config, seed, num_frames=config.num_frames))
        rows.append({"direction_of_extension": direction,
                     **extension_row(given, out.video, out.info["given_frames"], direction, p["prompt"]),
                     "truth_direction": motion_read(world, p["prompt"])["direction"]})
    return rows


def measure_connect(pipe, spec, config, seed, p, clip):
    first, second = connect_clips(spec, config, pipe.vae.temporal_factor)
    out = pipe.connect(p["caption"], first, second, **options(config, seed, num_frames=config.num_frames))
    return [connect_row(pipe, out.video, out.info, first, second)]


def measure_loop(pipe, spec, config, seed, p, clip):
    return [pipe.loop(p["caption"], **options(config, seed, num_frames=config.num_frames)).info["seam"]]


def measure_edit(pipe, spec, config, seed, p, clip):
    edit = prompts_of(recolored(spec, config.edit_color))
    rows = []
    for strength in config.strengths:
        out = pipe.edit(edit["caption"], clip, strength=strength, **options(config, seed))
        rows.append({"edit_prompt": edit["prompt"], "strength": float(strength),
                     **edit_row(out.video, clip, edit["prompt"])})
    return rows


def measure_inpaint(pipe, spec, config, seed, p, clip):
    out = pipe.inpaint(p["caption"], clip, config.box, **options(config, seed))
    return [inpaint_row(out.video, clip, config.box)]


def measure_long(pipe, spec, config, seed, p, clip):
    out = pipe.long_video(p["caption"], segments=config.segments,
                          **options(config, seed, num_frames=config.num_frames))
    return [long_row(out.video, out.info, p["prompt"])]


MEASURES = {"i2v": measure_i2v, "extend": measure_extend, "connect": measure_connect, "loop": measure_loop,
            "edit": measure_edit, "inpaint": measure_inpaint, "long": measure_long}
MODES = tuple(MEASURES)


def run_scene(pipe, spec, config: ModesConfig, seed: int) -> dict:
    """Every mode on one scene (its world video of T frames the input) with noise ``seed``:
    {mode: [rows]}, each row tagged with the short prompt and the seed (``extend``: one row per
    direction; ``edit``: one per strength)."""
    p = prompts_of(spec)
    clip = render_clip(spec, config, config.num_frames)
    return {mode: [{"prompt": p["prompt"], "seed": seed, **row} for row in measure(pipe, spec, config, seed, p, clip)]
            for mode, measure in MEASURES.items()}


def run_modes(pipe, config: ModesConfig, *, progress: bool = True) -> dict:
    """Every mode on every scene and seed: ``{"config", "prompts", "rows": {mode: [rows]}}``."""
    from tqdm.auto import tqdm

    scenes = mode_scenes(config)
    rows: dict = {m: [] for m in MODES}
    jobs = [(spec, seed) for spec in scenes for seed in range(config.seeds)]
    for spec, seed in tqdm(jobs, desc="prompting modes", disable=not progress, leave=False):
        for mode, more in run_scene(pipe, spec, config, seed).items():
            rows[mode] += more
    return {"config": asdict(config), "prompts": [prompts_of(s)["prompt"] for s in scenes], "rows": rows}


@dataclass(frozen=True)
class _Measured:
    """What a cached result is keyed by: the pipeline folder and the config."""

    pipeline: str
    modes: ModesConfig


def load_or_run(pipe_folder, scale, *, run_root="runs", retrain: bool = False, progress: bool = True,
                device="cpu", **overrides) -> dict:
    """:func:`run_modes` of the pipeline in ``pipe_folder``, cached as
    ``<run_root>/<scale>/prompting_modes-<hash>/result.json`` (``retrain=True`` measures again)."""
    from sora_mini.artifacts.store import part_dir
    from sora_mini.checkpoint import atomic_write
    from sora_mini.pipeline import SoraMiniPipeline

    config = modes_config(scale, **overrides)
    key = _Measured(str(Path(pipe_folder).resolve()), config)
    path = part_dir(run_root, getattr(scale, "name", scale), "prompting_modes", key) / "result.json"
    if path.is_file() and not retrain:
        return json.loads(path.read_text())
    result = run_modes(SoraMiniPipeline.from_pretrained(pipe_folder, device=device), config, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return json.loads(text)  # as a cached call returns it (tuples become lists)


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
