"""The interactive sampler for JupyterLab: a prompt and a mode in, an animation and the evaluator's
reading of it out.

    from sora_mini.widgets import Sampler
    Sampler(pipe)          # or Sampler("small"): the trained pipeline of a scale (``get_pipeline``)

Controls: the prompt, the mode (text-to-video, image-to-video, extend, connect, edit, loop, inpaint,
long; a mode that needs an image or a clip takes an upload, or renders a world sample), the size
(16:9, 9:16, 1:1, or an image) and duration, steps, guidance and seed; Generate; a progress bar
(one tick per transformer evaluation); the result as a GIF beside the prompt and the evaluator's
reading (``sora_mini.evaluate.evaluate_video``); Save as GIF or MP4. **Nothing runs until Generate is
pressed**, and every failure is shown as a message in the widget, never as a traceback.

The widget only wires controls to pure functions, which tests and notebooks call directly
(:mod:`sora_mini.widget_core`, importable from here too): ``SampleRequest`` (what the controls say)
-> ``run_request(pipe, request)`` -> ``SampleResult``; ``reading_html(result)``,
``result_gif(video)`` and ``save_result(result, folder, fmt)`` show and keep it.
"""

from __future__ import annotations

import html
from pathlib import Path

from sora_mini.modes import MODES
from sora_mini.paths import run_dir, workbook_root
from sora_mini.videoio import READABLE
from sora_mini.widget_core import (  # noqa: F401  the widget's logic, importable from here too
    ASPECTS,
    FPS,
    IMAGE,
    MODE_LABELS,
    NEED_FRAMES,
    SHOWN_PIXELS,
    SampleRequest,
    SampleResult,
    check_request,
    decode_upload,
    error_message,
    evaluator_reading,
    expected_evals,
    frame_options,
    parse_box,
    reading_html,
    request_inputs,
    result_gif,
    run_request,
    sampling_options,
    save_result,
    shown_scale,
    world_clip,
)


# ----------------------------------------------------------------------------------------------
# The widget
# ----------------------------------------------------------------------------------------------
class Sampler:
    """The sampler (see the module docstring) on ``pipe_or_scale``: a ``SoraMiniPipeline``, or a
    scale name loaded from ``run_root`` (trained first at tiny when missing) with ``get_pipeline``;
    saved files go to ``out_dir`` (default ``<run_root>/samples``; a relative ``run_root`` is taken
    from the workbook's root, as a notebook's ``RUN_DIR``). Display it as a cell's last expression; the
    controls are attributes (``prompt``, ``mode``, ``source``, ``upload``, ``upload2``, ``aspect``,
    ``frames``, ``steps``, ``guidance``, ``seed``, ``generate_button``, ...), the last result ``result``."""

    def __init__(self, pipe_or_scale, *, run_root="runs", device="cpu", out_dir=None):
        from sora_mini.pipeline import get_pipeline

        run_root = run_dir(run_root, create=False, base=workbook_root())
        if isinstance(pipe_or_scale, str):
            pipe_or_scale = get_pipeline(pipe_or_scale, run_root=run_root, device=device, progress=False)
        self.pipe = pipe_or_scale
        self.out_dir = Path(out_dir) if out_dir is not None else run_root / "samples"
        self.result: SampleResult | None = None
        self._build()
        self._refresh()

    def _build(self) -> None:
        import ipywidgets as W

        d, wide = self.pipe.defaults, {"style": {"description_width": "90px"}}
        self.prompt = W.Textarea(value="a red circle moves right", description="prompt",
                                 layout=W.Layout(width="380px", height="52px"), **wide)
        self.mode = W.Dropdown(options=list(MODE_LABELS.items()), value="t2v", description="mode", **wide)
        self.source = W.ToggleButtons(options=[("a world sample", "world"), ("upload", "upload")],
                                      description="input", **wide)
        self.world_seed = W.IntText(value=0, description="world seed", **wide)
        accept = ",".join(READABLE)
        self.upload = W.FileUpload(accept=accept, description="image / clip")
        self.upload2 = W.FileUpload(accept=accept, description="second clip")
        self.direction = W.ToggleButtons(options=["forward", "backward"], description="direction", **wide)
        self.strength = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="strength",
                                      continuous_update=False, **wide)
        self.box = W.Text(value="", placeholder="y0 x0 y1 x1 (empty: the centre)", description="box", **wide)
        self.segments = W.IntSlider(value=3, min=2, max=6, description="segments", continuous_update=False, **wide)
        self.aspect = W.Dropdown(options=list(ASPECTS), value=next(k for k in ASPECTS if k.startswith("1:1")),
                                 description="size", **wide)
        self.frames = W.Dropdown(options=frame_options(self.pipe.vae.temporal_factor, d.num_frames),
                                 value=d.num_frames, description="duration", **wide)
        self.steps = W.IntSlider(value=d.num_inference_steps, min=1, max=50, description="steps",
                                 continuous_update=False, **wide)
        self.guidance = W.FloatSlider(value=d.guidance_scale, min=0.0, max=10.0, step=0.5, description="guidance",
                                      continuous_update=False, **wide)
        self.seed = W.IntText(value=0, description="seed", **wide)
        self.extend = W.Checkbox(value=True, description="extend the prompt into a detailed caption", indent=False)
        self.generate_button = W.Button(description="Generate", button_style="primary", icon="play")
        self.generate_button.add_class("sora-mini-generate")
        self.progress = W.IntProgress(value=0, min=0, max=1, layout=W.Layout(width="200px"))
        self.message = W.HTML("press Generate: nothing runs before")
        self.animation = W.Image(format="gif", layout=W.Layout(display="none"))
        self.animation.add_class("sora-mini-result")
        self.reading = W.HTML("", layout=W.Layout(width="360px", margin="0 0 0 12px"))
        self.reading.add_class("sora-mini-result-reading")
        self.save_format = W.Dropdown(options=["gif", "mp4"], value="gif", description="save as", **wide)
        self.save_button = W.Button(description="Save", icon="save", disabled=True)
        self.generate_button.on_click(self._on_generate)
        self.save_button.on_click(self._on_save)
        for control in (self.mode, self.source, self.aspect):
            control.observe(self._refresh, names="value")
        self._mode_controls = W.VBox([self.source, self.world_seed, self.upload, self.upload2, self.direction,
                                      self.strength, self.box, self.segments])
        controls = W.VBox([self.prompt, self.mode, self._mode_controls, self.aspect, self.frames, self.steps,
                           self.guidance, self.seed, self.extend, W.HBox([self.generate_button, self.progress]),
                           self.message])
        shown = W.VBox([W.HBox([self.animation, self.reading]), W.HBox([self.save_format, self.save_button])])
        self.widget = W.HBox([controls, shown])

    def _refresh(self, _change=None) -> None:
        """Show the controls the chosen mode and input take (no generation)."""
        mode, upload = self.mode.value, self.source.value == "upload"
        takes_input = bool([n for n in MODES[mode][0] if n != "box"])
        shown = {self.source: takes_input, self.world_seed: takes_input and not upload,
                 self.upload: takes_input and upload, self.upload2: mode == "connect" and upload,
                 self.direction: mode == "extend", self.strength: mode == "edit", self.box: mode == "inpaint",
                 self.segments: mode == "long"}
        for control, visible in shown.items():
            control.layout.display = "" if visible else "none"
        self.upload.description = "image" if mode == "i2v" else "clip"
        self.frames.disabled = self.aspect.value == IMAGE

    def request(self) -> SampleRequest:
        """What the controls say (uploads decoded; a ValueError for an unreadable file or box)."""
        mode = self.mode.value
        uploads = {"image" if mode == "i2v" else "video": decode_upload(self.upload.value),
                   "video2": decode_upload(self.upload2.value)}
        box = parse_box(self.box.value)
        return SampleRequest(prompt=self.prompt.value, mode=mode, size=ASPECTS[self.aspect.value],
                             num_frames=1 if self.aspect.value == IMAGE else self.frames.value,
                             steps=self.steps.value, guidance=self.guidance.value, seed=self.seed.value,
                             source=self.source.value, world_seed=self.world_seed.value, uploads=uploads,
                             direction=self.direction.value, strength=self.strength.value, box=box,
                             segments=self.segments.value, extend=self.extend.value)

    def _say(self, text: str, kind: str = "info") -> None:
        color = {"info": "inherit", "error": "#c62828", "done": "#2e7d32"}[kind]
        self.message.value = f"<span class='sora-mini-{kind}' style='color:{color}'>{html.escape(text)}</span>"

    def _on_step(self, n: int) -> None:
        self.progress.value = min(n, self.progress.max)

    def _on_generate(self, _button=None) -> None:
        self.generate_button.disabled, self.save_button.disabled = True, True
        self.progress.value, self.progress.bar_style = 0, ""
        self._say("generating ...")
        try:
            req = self.request()
            self.progress.max = expected_evals(req, self.pipe.defaults.sampler)
            result = run_request(self.pipe, req, on_step=self._on_step)
        except Exception as e:  # noqa: BLE001 - the widget shows every failure as a message, never a traceback
            self.progress.bar_style = "danger"
            self._say(error_message(e), "error")
            return
        finally:
            self.generate_button.disabled = False
        self.result = result
        self.animation.value = result_gif(result.video)
        self.animation.layout.display, self.animation.layout.flex = "", "none"
        scale = shown_scale(result.video)
        layout = self.animation.layout
        layout.width, layout.height = (f"{n * scale}px" for n in result.video.shape[2:0:-1])  # W, H: not stretched
        self.reading.value = reading_html(result)
        self.progress.value, self.progress.bar_style = self.progress.max, "success"
        self.save_button.disabled = False
        self._say(f"done: {result.video.shape[0]} frames in {result.info.get('seconds', 0):.2f} s", "done")

    def _on_save(self, _button=None) -> None:
        try:
            path = save_result(self.result, self.out_dir, self.save_format.value)
        except Exception as e:  # noqa: BLE001 - shown as a message, as in _on_generate
            self._say(f"could not save: {error_message(e)}", "error")
            return
        self._say(f"saved {path}", "done")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<Sampler: mode {self.mode.value}, {'a result' if self.result is not None else 'no result yet'}>"
