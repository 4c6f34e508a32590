"""What the interactive sampler (:mod:`sora_mini.widgets`) does, without a widget: plain
functions that tests, notebooks and scripts call directly.

``SampleRequest`` (what the controls say) -> ``check_request`` -> ``run_request(pipe, request)``
-> ``SampleResult``; ``reading_html(result)``, ``result_gif(video)`` and ``save_result(result,
folder, fmt)`` show and keep it; ``decode_upload``, ``parse_box``, ``world_clip`` and
``frame_options`` turn the controls' values into inputs; ``error_message`` the message a failure shows.
With an input (an upload or a world sample) the output takes the input's size, and edit and inpaint
its duration too (the input policy of ``sora_mini.modes``).
"""

from __future__ import annotations

import html
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sora_mini.modes import MODES, check_mode
from sora_mini.studies.prompt_suite import ASPECTS as SUITE_ASPECTS
from sora_mini.videoio import READABLE, gif_bytes, read_video, write_video

MODE_LABELS = {"text-to-video": "t2v", "image-to-video": "i2v", "extend": "extend", "connect": "connect",
               "edit (SDEdit)": "edit", "loop": "loop", "inpaint": "inpaint", "long": "long"}
IMAGE = "image"  # the aspect that is one frame (text-to-video of T = 1)
ASPECTS = {**{f"{name} ({h}x{w})": (h, w) for name, (h, w) in SUITE_ASPECTS.items()}, IMAGE: SUITE_ASPECTS["1:1"]}
NEED_FRAMES = ("i2v", "extend", "connect", "loop", "long")  # modes that make a video from given frames
FPS = 8
SHOWN_PIXELS = 256  # the longer side of the animation on screen


# ----------------------------------------------------------------------------------------------
# What the controls say, and the generation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SampleRequest:
    """One generation. ``size`` (height, width) pixels and ``num_frames`` (1 + k n; 1 = an image)
    are the output's when the mode takes no input; ``source`` "world" renders the inputs a mode
    needs from ``sora_mini.world`` (seed ``world_seed``, at that size), "upload" takes ``uploads``
    (name -> uint8 [T, H, W, 3]: "image", "video", "video2"). ``box`` (y0, x0, y1, x1) for inpaint
    (None: the centre quarter); ``extend`` False passes the prompt as it is, not extended into
    a detailed caption."""

    prompt: str
    mode: str = "t2v"
    size: tuple[int, int] = (32, 32)
    num_frames: int = 17
    steps: int = 8  # the pipeline's default (SamplingDefaults)
    guidance: float = 3.0
    seed: int = 0
    source: str = "world"
    world_seed: int = 0
    uploads: dict = field(default_factory=dict)
    direction: str = "forward"
    strength: float = 0.6
    box: tuple | None = None
    segments: int = 3
    extend: bool = True


@dataclass
class SampleResult:
    """``video`` uint8 [T, H, W, 3]; ``info`` the pipeline's; ``reading`` the evaluator's dict, or
    why it could not read the prompt (a string); ``input_note`` what the inputs were."""

    video: np.ndarray
    request: SampleRequest
    info: dict
    reading: dict | str
    input_note: str = ""


def check_request(req: SampleRequest) -> None:
    """A ValueError, worded for the widget's user, for a request the pipeline should never see."""
    check_mode(req.mode)
    if not req.prompt.strip():
        raise ValueError("write a prompt first, e.g. 'a red circle moves right'")
    if req.mode in NEED_FRAMES and req.num_frames == 1:
        raise ValueError(f"mode {req.mode} makes a video from given frames: choose a duration of more than one "
                         f"frame (the size 'image' is for text-to-video, edit and inpaint)")
    if req.source not in ("world", "upload"):
        raise ValueError(f"source must be 'world' or 'upload', got {req.source!r}")


def world_clip(seed: int, height: int, width: int, frames: int) -> tuple[np.ndarray, str]:
    """A world sample: (uint8 [frames, height, width, 3], its short caption)."""
    from sora_mini.world import render, sample_spec
    from sora_mini.world.captions import short_caption

    spec = sample_spec(seed)
    return render(spec, height, width, frames)[0], short_caption(spec)


def request_inputs(req: SampleRequest) -> tuple[dict, str]:
    """(the inputs of ``req.mode`` for ``pipe.generate``, a note on what they are): an ``image``
    uint8 [H, W, 3] (an uploaded clip's first frame), a ``video`` / ``video2`` [T, H, W, 3], the
    inpainting ``box``; a ValueError naming a missing upload."""
    names = [n for n in MODES[req.mode][0] if n != "box"]
    inputs, notes = {}, []
    for i, name in enumerate(names):
        if req.source == "world":
            clip, caption = world_clip(req.world_seed + i, *req.size, 1 if name == "image" else req.num_frames)
            notes.append(f"{name}: a world sample, '{caption}' (world seed {req.world_seed + i})")
        else:
            clip = req.uploads.get(name)
            if clip is None:
                what = {"image": "an image (or a clip)", "video": "a clip", "video2": "a second clip"}[name]
                raise ValueError(f"mode {req.mode} ({MODES[req.mode][1]}) needs {what}: upload one "
                                 f"({', '.join(READABLE)}), or choose the input 'a world sample'")
            notes.append(f"{name}: the upload, {clip.shape[0]} frame(s) of {clip.shape[1]}x{clip.shape[2]}")
        inputs[name] = clip[0] if name == "image" else clip
    if req.mode == "inpaint":
        h, w = inputs["video"].shape[1:3]
        inputs["box"] = req.box if req.box is not None else (h // 4, w // 4, h - h // 4, w - w // 4)
        notes.append(f"box (y0, x0, y1, x1): {tuple(inputs['box'])}")
    return inputs, "; ".join(notes)


def sampling_options(req: SampleRequest) -> dict:
    """The keyword arguments of ``pipe.generate`` besides the inputs: a size only where the mode has
    no input to take it from, the mode's own options, and steps, guidance and seed."""
    options = {"num_inference_steps": req.steps, "guidance_scale": req.guidance, "seed": req.seed,
               "extend": req.extend}
    if not MODES[req.mode][0]:
        options.update(height=req.size[0], width=req.size[1])
    if req.mode not in ("edit", "inpaint"):  # those keep the clip's duration
        options["num_frames"] = req.num_frames
    own = {"extend": {"direction": req.direction}, "edit": {"strength": req.strength},
           "long": {"segments": req.segments}}
    return {**options, **own.get(req.mode, {})}


def expected_evals(req: SampleRequest, sampler: str) -> int:
    """Transformer evaluations the request costs (the progress bar's length): one sampling pass,
    SDEdit's share of it, two passes for a loop, one per segment of a long video."""
    from sora_mini.diffusion.samplers import count_evals

    steps = int(req.steps * req.strength) if req.mode == "edit" else req.steps
    passes = {"loop": 2, "long": req.segments}.get(req.mode, 1)
    return max(1, count_evals(sampler, steps) * passes if steps else 1)


def evaluator_reading(video: np.ndarray, prompt: str) -> dict | str:
    """``evaluate_video(video, prompt)``, or a sentence saying why the evaluator cannot read it."""
    from sora_mini.evaluate import evaluate_video

    try:
        return evaluate_video(video, prompt)
    except ValueError as e:  # a prompt outside the world's grammar (extend=False): the video is still shown
        return f"the evaluator cannot read this prompt ({e}); it scores prompts in the world's words"


def run_request(pipe, req: SampleRequest, on_step=None) -> SampleResult:
    """Generate ``req`` with ``pipe`` (a ``SoraMiniPipeline``) and read the result with the evaluator.
    ``on_step(n)`` is called after the n-th transformer evaluation (a progress bar)."""
    check_request(req)
    inputs, note = request_inputs(req)
    hook = None
    if on_step is not None:
        count = [0]

        def tick(*_):
            count[0] += 1
            on_step(count[0])

        hook = pipe.transformer.register_forward_hook(tick)
    try:
        out = pipe.generate(req.mode, req.prompt, **inputs, **sampling_options(req))
    finally:
        if hook is not None:
            hook.remove()
    return SampleResult(out.video, req, out.info, evaluator_reading(out.video, req.prompt), note)


# ----------------------------------------------------------------------------------------------
# Showing and keeping a result
# ----------------------------------------------------------------------------------------------
def shown_scale(video: np.ndarray) -> int:
    """The upscaling that makes the longer side of a video [T, H, W, 3] about 256 px on screen."""
    return max(1, SHOWN_PIXELS // max(video.shape[1:3]))


def result_gif(video: np.ndarray) -> bytes:
    """The animation on screen: GIF bytes, upscaled (nearest) by :func:`shown_scale`."""
    from sora_mini.viz import upscale

    return gif_bytes(upscale(video, shown_scale(video)), fps=FPS)


def _score(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def reading_html(result: SampleResult) -> str:
    """The prompt, the caption the model was given, and the evaluator's reading, as HTML."""
    esc = html.escape
    used = result.info.get("used_prompts", [result.request.prompt])[0]
    T, H, W = result.video.shape[:3]
    head = (f"<b>prompt</b>: {esc(result.request.prompt)}<br><b>as given to the model</b>: {esc(used)}<br>"
            f"<b>mode</b>: {esc(result.request.mode)}, {T} frames of {H}x{W}, seed {result.info.get('seed')}, "
            f"{result.info.get('seconds', 0):.2f} s")
    if result.input_note:
        head += f"<br><b>inputs</b>: {esc(result.input_note)}"
    r = result.reading
    if isinstance(r, str):
        return f"<div class='sora-mini-reading'>{head}<br><i>{esc(r)}</i></div>"
    stated = {k: v for k, v in r["adherence"]["attributes"].items() if v is not None}
    rows = [("adherence (overall)", r["adherence"]["overall"]), *stated.items(),
            ("physics", r["physics"]["score"]), ("consistency", r["consistency"]["score"]),
            ("framing", r["framing"]["score"])]
    table = "".join(f"<tr><td>{esc(k)}</td><td>{_score(v)}</td></tr>" for k, v in rows)
    found = ", ".join(f"{o['color']} {o.get('shape') or '?'}" for o in r["detected"] if o.get("credible")) or "none"
    return (f"<div class='sora-mini-reading'>{head}<br><b>the evaluator reads</b> (0 to 1, from pixels; "
            f"objects found: {esc(found)}, background {esc(str(r['background']))})"
            f"<table>{table}</table></div>")


def save_result(result: SampleResult, folder, fmt: str = "gif") -> Path:
    """Write the video to ``folder/<mode>-<prompt>-seed<seed>.<fmt>`` (gif or mp4, native size)."""
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"save as gif or mp4, got {fmt!r}")
    slug = re.sub(r"[^a-z0-9]+", "-", result.request.prompt.lower()).strip("-")[:40] or "sample"
    return write_video(Path(folder) / f"{result.request.mode}-{slug}-seed{result.request.seed}.{fmt}",
                       result.video, fps=FPS)


def decode_upload(value) -> np.ndarray | None:
    """A FileUpload's value (a tuple of {name, content, ...}) -> uint8 [T, H, W, 3] read by the file's
    suffix (``sora_mini.videoio.read_video``); None when nothing was uploaded."""
    if not value:
        return None
    entry = value[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(entry["name"]).name
        path.write_bytes(bytes(entry["content"]))
        return read_video(path)


def parse_box(text: str) -> tuple[int, int, int, int] | None:
    """The box control's text "y0 x0 y1 x1" (spaces or commas) -> 4 integers; None when empty."""
    if not text.strip():
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != 4 or not all(re.fullmatch(r"-?\d+", p) for p in parts):
        raise ValueError(f"box {text!r}: give 4 integers 'y0 x0 y1 x1' in pixels (y1, x1 exclusive), or leave "
                         "it empty for the centre quarter")
    return tuple(int(p) for p in parts)


def error_message(error: Exception) -> str:
    """What the widget says when a generation fails: the message of an error of the input, else
    the error's type and message flagged as unexpected."""
    if isinstance(error, (ValueError, FileNotFoundError)):
        return str(error)
    return (f"unexpected {type(error).__name__}: {error} (not an input problem; call "
            f"run_request(pipe, sampler.request()) in a cell to see the traceback)")


def frame_options(temporal_factor: int, default: int, longest: int = 33) -> list[tuple[str, int]]:
    """The durations offered: 1 + k n frames up to ``longest`` (and ``default``), labelled in seconds."""
    counts = sorted({1 + temporal_factor * n for n in range(1, (longest - 1) // temporal_factor + 1)} | {default})
    return [(f"{t} frames ({t / FPS:.1f} s)", t) for t in counts]
