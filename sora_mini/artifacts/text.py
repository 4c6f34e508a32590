"""Text parts by scale: the CLIP-like pair, the captioner and the text encoder a preset conditions on.

``get_clip(scale)`` / ``get_captioner(scale)`` load the part from its folder of the store
(``sora_mini.artifacts.store``) or train it there with the scale's text preset
(``sora_mini.text.config``); held-out scores go to ``training.json`` (``training_info(folder)``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch

from sora_mini.artifacts.store import (
    LOG_NAME,
    TRAINER_NAME,
    clear_part,
    is_complete,
    part_dir,
    write_training_info,
)
from sora_mini.pretrained import config_to_dict


def _held_out(cfg, frames=None):
    """The preset's held-out ``CaptionedVideos`` (other seeds than training), of ``frames`` or its data's."""
    from sora_mini.text.data import CaptionedVideos

    d = cfg.data
    return CaptionedVideos(d.eval_videos, seed=d.seed + 1_000_003, sizes=d.sizes, frames=frames or d.frames,
                           max_objects=d.max_objects)


def _datasets(cfg, recipe=None):
    """The train and held-out ``CaptionedVideos`` of ``recipe``: its own ``frames`` / ``videos``
    when set, else the preset's data."""
    from sora_mini.text.data import CaptionedVideos

    d = cfg.data
    frames = recipe.frames if recipe is not None and recipe.frames else d.frames
    n = recipe.videos if recipe is not None and recipe.videos else d.train_videos
    train = CaptionedVideos(n, seed=d.seed, sizes=d.sizes, frames=frames, max_objects=d.max_objects)
    return train, _held_out(cfg, frames)


def captioner_stage_dirs(scale: str, *, run_root: str | os.PathLike = "runs") -> list:
    """The captioner's folders, stage by stage: the first (from CLIP's video tower when
    ``video_init="clip"``) and, when the preset sets ``captioner_finetune``, the second (from the
    first's weights, on its own clips). ``get_captioner`` returns the last."""
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    recipe = cfg.captioner_train
    init = (VideoInit(text_part_dir("clip", scale, run_root=run_root).name),) if recipe.video_init == "clip" else ()
    first = part_dir(run_root, cfg.name, "captioner", cfg.captioner, recipe, cfg.data, *init)
    if cfg.captioner_finetune is None:
        return [first]
    return [first, part_dir(run_root, cfg.name, "captioner", cfg.captioner, cfg.captioner_finetune, cfg.data,
                            StageInit(first.name))]


def text_part_dir(part: str, scale: str, *, run_root: str | os.PathLike = "runs"):
    """The folder of ``part`` ("clip" or "captioner", the captioner's last stage) at ``scale``: the
    hash covers the model config, the training recipe and the data (and where it started)."""
    from sora_mini.text.config import get_text_config

    if part == "captioner":
        return captioner_stage_dirs(scale, run_root=run_root)[-1]
    if part != "clip":
        raise ValueError(f"unknown text part {part!r}: 'clip' or 'captioner'")
    cfg = get_text_config(scale)
    return part_dir(run_root, cfg.name, part, cfg.clip, cfg.clip_train, cfg.data)


@dataclass(frozen=True)
class VideoInit:
    """Where a captioner's video encoder starts: the trained CLIP folder (its name) at the same scale."""

    clip: str


@dataclass(frozen=True)
class StageInit:
    """Where a later captioner stage starts: the previous stage's folder (its name)."""

    previous: str


def _init_video(model, scale: str, recipe, *, run_root, device, progress) -> None:
    """``recipe.video_init == "clip"``: copy the scale's trained CLIP video tower (trained first
    when missing) into the captioner's video encoder, frozen when ``recipe.freeze_video``."""
    if recipe.video_init != "clip":
        return
    clip = get_clip(scale, run_root=run_root, device=device, progress=progress)
    if clip.config.video_channels != model.config.video_channels:
        raise ValueError(f"the captioner's video encoder {model.config.video_channels} cannot start from CLIP's "
                         f"{clip.config.video_channels}: give both the same video_channels, or video_init=None")
    model.video.load_encoder(clip.video)
    if recipe.freeze_video:
        model.video.requires_grad_(False)


def _get(folder, scale: str, model_cls, model_cfg, recipe, train_fn, evaluate, *, init=None, extra=None,
         retrain, device, progress):
    """Load the part in ``folder``, or train it there: ``init(model)`` before the first step,
    ``evaluate(model, held)`` after the last, ``extra(model)`` (a dict) added to its ``training.json``."""
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    if retrain:
        clear_part(folder)
    if not is_complete(folder):
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.data.seed)
        train, held = _datasets(cfg, recipe)
        model = model_cls(model_cfg)
        if init is not None:
            init(model)
        t0 = time.perf_counter()
        history = train_fn(model, train, recipe, device=device, progress=progress,
                           ckpt_path=folder / TRAINER_NAME, log_path=folder / LOG_NAME)
        seconds = time.perf_counter() - t0
        model.eval()
        model.save_pretrained(folder)
        write_training_info(folder, {
            "scale": cfg.name, "part": folder.name.rsplit("-", 1)[0], "steps": recipe.steps,
            "train_seconds": round(seconds, 1), "device": str(device), "final": history[-1] if history else {},
            "held_out": evaluate(model, held), "training": config_to_dict(recipe), **(extra(model) if extra else {})})
    return model_cls.from_pretrained(folder, device=device)


def _clip_eval(model, held):
    from sora_mini.text.clip import retrieval_recall

    vids = [held.model_video(i) for i in range(len(held))]
    return {"detailed": retrieval_recall(model, vids, held.detailed),
            "short": retrieval_recall(model, vids, held.short)}


def _captioner_eval(model, held):
    from sora_mini.text.scoring import evaluate_captioner

    return evaluate_captioner(model, held)


def get_clip(scale: str = "tiny", *, run_root="runs", device="cpu", retrain: bool = False,
             progress: bool = True):
    """The scale's trained ``VideoTextCLIP`` (held-out recall in its ``training.json``)."""
    from sora_mini.text.clip import VideoTextCLIP
    from sora_mini.text.config import get_text_config
    from sora_mini.train.text import train_clip

    cfg = get_text_config(scale)
    return _get(text_part_dir("clip", scale, run_root=run_root), scale, VideoTextCLIP, cfg.clip, cfg.clip_train,
                train_clip, _clip_eval, retrain=retrain, device=device, progress=progress)


def get_captioner(scale: str = "tiny", *, run_root="runs", device="cpu", retrain: bool = False,
                  progress: bool = True):
    """The scale's trained ``VideoCaptioner``, its last stage (held-out caption scores in each
    stage's ``training.json``; a second stage on other clip lengths also scores the first stage's,
    under ``held_out_first_stage_clips``). ``retrain`` retrains the last stage only."""
    from sora_mini.text.captioner import VideoCaptioner
    from sora_mini.text.config import get_text_config
    from sora_mini.train.text import train_captioner

    cfg = get_text_config(scale)
    folders = captioner_stage_dirs(scale, run_root=run_root)
    first = _get(folders[0], scale, VideoCaptioner, cfg.captioner, cfg.captioner_train, train_captioner,
                 _captioner_eval, retrain=retrain and len(folders) == 1, device=device, progress=progress,
                 init=lambda m: _init_video(m, scale, cfg.captioner_train, run_root=run_root, device=device,
                                            progress=progress))
    if len(folders) == 1:
        return first
    recipe = cfg.captioner_finetune

    def first_clips(model):  # its scores on the first stage's clips too, when its own differ
        if not recipe.frames or tuple(recipe.frames) == tuple(cfg.data.frames):
            return {}
        return {"held_out_first_stage_clips": _captioner_eval(model, _held_out(cfg))}

    model = _get(folders[1], scale, VideoCaptioner, cfg.captioner, recipe, train_captioner, _captioner_eval,
                 retrain=retrain, device=device, progress=progress,
                 init=lambda m: m.load_state_dict(first.state_dict()),
                 extra=lambda m: {"init_from": folders[0].name, **first_clips(m)})
    return model


def get_text_encoder(scale: str = "tiny", *, run_root="runs", device="cpu", retrain: bool = False,
                     progress: bool = True):
    """The encoder the scale's preset conditions on: a fresh ``TransformerTextEncoder`` (trained
    with the diffusion model), the trained CLIP's text tower, or ``FrozenMiniLM``."""
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    if cfg.encoder == "minilm":
        from sora_mini.text.frozen import FrozenMiniLM

        return FrozenMiniLM().to(device)
    if cfg.encoder == "clip":
        return get_clip(scale, run_root=run_root, device=device, retrain=retrain, progress=progress).text
    from sora_mini.text.encoders import TransformerTextEncoder

    return TransformerTextEncoder(cfg.text_encoder).to(device)
