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
``runs/<scale>/prompting_modes_v2-<hash>/result.json``; ``summary(result)``: each mode's figure with
its 95 % interval against its target.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from sora_mini.config import scale_preset
from sora_mini.modes import (
    DEFAULT_OVERLAP,
    conditioning_masks,
)
from sora_mini.studies.mode_metrics import (  # noqa: F401  the measurements, importable from here too
    TARGETS,
    connect_row,
    edit_curve,
    edit_row,
    extension_row,
    i2v_row,
    inpaint_row,
    joined_clip,
    long_row,
    motion_read,
    segment_boundaries,
    step_ratio,
    summary,
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
                 "small": ModesConfig(prompts=12),
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
    from sora_mini.pipeline import NoDenoisingStep

    edit = prompts_of(recolored(spec, config.edit_color))
    rows = []
    for strength in config.strengths:
        with warnings.catch_warnings():  # a strength below one step's share runs none: the curve starts there
            warnings.simplefilter("ignore", NoDenoisingStep)
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
    """What a cached result is keyed by: the pipeline folder, its weights and the config."""

    pipeline: str
    modes: ModesConfig
    weights: str = ""  # the transformer's weights file hash: a folder replaced in place is measured again


def _weights_hash(pipe_folder) -> str:
    """sha256 (16 hex) of the pipeline's ``transformer/model.safetensors`` ("" when there is none)."""
    import hashlib

    weights = Path(pipe_folder) / "transformer" / "model.safetensors"
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16] if weights.is_file() else ""


def load_or_run(pipe_folder, scale, *, run_root="runs", retrain: bool = False, progress: bool = True,
                device="cpu", **overrides) -> dict:
    """:func:`run_modes` of the pipeline in ``pipe_folder``, cached as
    ``<run_root>/<scale>/prompting_modes_v2-<hash>/result.json`` (``retrain=True`` measures again)."""
    from sora_mini.artifacts.store import part_dir
    from sora_mini.checkpoint import atomic_write
    from sora_mini.pipeline import SoraMiniPipeline

    config = modes_config(scale, **overrides)
    key = _Measured(str(Path(pipe_folder).resolve()), config, _weights_hash(pipe_folder))
    # v2: connect's rows hold seam_ratio, and its given end is the reconstruction (pasted)
    path = part_dir(run_root, getattr(scale, "name", scale), "prompting_modes_v2", key) / "result.json"
    if path.is_file() and not retrain:
        return json.loads(path.read_text())
    result = run_modes(SoraMiniPipeline.from_pretrained(pipe_folder, device=device), config, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return json.loads(text)  # as a cached call returns it (tuples become lists)
