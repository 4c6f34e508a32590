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


def _datasets(cfg):
    from sora_mini.text.data import CaptionedVideos

    d = cfg.data
    train = CaptionedVideos(d.train_videos, seed=d.seed, sizes=d.sizes, frames=d.frames, max_objects=d.max_objects)
    held = CaptionedVideos(d.eval_videos, seed=d.seed + 1_000_003, sizes=d.sizes, frames=d.frames,
                           max_objects=d.max_objects)
    return train, held


def text_part_dir(part: str, scale: str, *, run_root: str | os.PathLike = "runs"):
    """The folder of ``part`` ("clip" or "captioner") at ``scale``: the hash covers the model
    config, the training recipe and the data."""
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    model_cfg, recipe = (cfg.clip, cfg.clip_train) if part == "clip" else (cfg.captioner, cfg.captioner_train)
    if part == "captioner" and recipe.video_init == "clip":  # and the CLIP it starts from
        return part_dir(run_root, cfg.name, part, model_cfg, recipe, cfg.data,
                        VideoInit(text_part_dir("clip", scale, run_root=run_root).name))
    return part_dir(run_root, cfg.name, part, model_cfg, recipe, cfg.data)


@dataclass(frozen=True)
class VideoInit:
    """Where a captioner's video encoder starts: the trained CLIP folder (its name) at the same scale."""

    clip: str


def _init_video(model, scale: str, recipe, *, run_root, device, progress) -> None:
    """``recipe.video_init == "clip"``: copy the scale's trained CLIP video tower (trained first
    when missing) into the captioner's video encoder, frozen when ``recipe.freeze_video``."""
    if recipe.video_init != "clip":
        return
    clip = get_clip(scale, run_root=run_root, device=device, progress=progress)
    if clip.config.video_channels != model.config.video_channels:
        raise ValueError(f"the captioner's video encoder {model.config.video_channels} cannot start from CLIP's "
                         f"{clip.config.video_channels}: give both the same video_channels, or video_init=None")
    model.video.load_state_dict(clip.video.state_dict())
    if recipe.freeze_video:
        model.video.requires_grad_(False)


def _get(part: str, scale: str, model_cls, model_cfg, recipe, train_fn, evaluate, *, run_root, device,
         retrain, progress):
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    folder = text_part_dir(part, scale, run_root=run_root)
    if retrain:
        clear_part(folder)
    if not is_complete(folder):
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.data.seed)
        train, held = _datasets(cfg)
        model = model_cls(model_cfg)
        if part == "captioner":
            _init_video(model, scale, recipe, run_root=run_root, device=device, progress=progress)
        t0 = time.perf_counter()
        history = train_fn(model, train, recipe, device=device, progress=progress,
                           ckpt_path=folder / TRAINER_NAME, log_path=folder / LOG_NAME)
        seconds = time.perf_counter() - t0
        model.eval()
        model.save_pretrained(folder)
        write_training_info(folder, {
            "scale": cfg.name, "part": part, "steps": recipe.steps, "train_seconds": round(seconds, 1),
            "device": str(device), "final": history[-1] if history else {},
            "held_out": evaluate(model, held), "training": config_to_dict(recipe)})
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
    return _get("clip", scale, VideoTextCLIP, cfg.clip, cfg.clip_train, train_clip, _clip_eval,
                run_root=run_root, device=device, retrain=retrain, progress=progress)


def get_captioner(scale: str = "tiny", *, run_root="runs", device="cpu", retrain: bool = False,
                  progress: bool = True):
    """The scale's trained ``VideoCaptioner`` (held-out caption scores in its ``training.json``)."""
    from sora_mini.text.captioner import VideoCaptioner
    from sora_mini.text.config import get_text_config
    from sora_mini.train.text import train_captioner

    cfg = get_text_config(scale)
    return _get("captioner", scale, VideoCaptioner, cfg.captioner, cfg.captioner_train, train_captioner,
                _captioner_eval, run_root=run_root, device=device, retrain=retrain, progress=progress)


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
