"""Get-or-train the text parts by scale (to be folded into ``sora_mini.artifacts``).

``get_clip(scale)`` / ``get_captioner(scale)`` load ``run_root/<scale>/<part>-<hash>/`` (a
``save_pretrained`` folder plus ``metrics.json``) or train the part there with the scale's
``TextConfig`` preset. The hash covers the model config, the recipe and the training data, so
changing any of them trains a new folder. ``get_text_encoder(scale)`` is the encoder the preset
conditions the diffusion model on.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import torch

from sora_mini.paths import run_dir
from sora_mini.pretrained import CONFIG_NAME, config_hash

METRICS_NAME = "metrics.json"


def part_dir(run_root, scale: str, part: str, *configs) -> Path:
    """``run_root/<scale>/<part>-<hash of configs>/`` (each hashed with ``config_hash``)."""
    joined = "/".join(config_hash(c, 16) for c in configs)
    return run_dir(run_root, scale, create=False) / f"{part}-{hashlib.sha256(joined.encode()).hexdigest()[:8]}"


def _datasets(cfg):
    from sora_mini.text.data import CaptionedVideos

    d = cfg.data
    train = CaptionedVideos(d.train_videos, seed=d.seed, sizes=d.sizes, frames=d.frames, max_objects=d.max_objects)
    held = CaptionedVideos(d.eval_videos, seed=d.seed + 1_000_003, sizes=d.sizes, frames=d.frames,
                           max_objects=d.max_objects)
    return train, held


def _get(part: str, scale: str, model_cls, model_cfg, recipe, train_fn, evaluate, *, run_root, device,
         retrain, progress):
    from sora_mini.text.config import get_text_config

    cfg = get_text_config(scale)
    folder = part_dir(run_root, cfg.name, part, model_cfg, recipe, cfg.data)
    if not retrain and (folder / CONFIG_NAME).is_file():
        return model_cls.from_pretrained(folder, device=device)
    if retrain and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.data.seed)
    train, held = _datasets(cfg)
    model = model_cls(model_cfg)
    t0 = time.perf_counter()
    history = train_fn(model, train, recipe, device=device, progress=progress,
                       ckpt_path=folder / "train", log_path=folder / "log.jsonl")
    seconds = time.perf_counter() - t0
    model.eval()
    metrics = {"scale": cfg.name, "steps": recipe.steps, "train_seconds": round(seconds, 1),
               "final": history[-1] if history else {}, "held_out": evaluate(model, held)}
    (folder / METRICS_NAME).write_text(json.dumps(metrics, indent=2))
    model.save_pretrained(folder)  # config.json last: a folder with one holds a complete part
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
    """The scale's trained ``VideoTextCLIP`` (held-out recall in ``<folder>/metrics.json``)."""
    from sora_mini.text.clip import VideoTextCLIP
    from sora_mini.text.config import get_text_config
    from sora_mini.train.text import train_clip

    cfg = get_text_config(scale)
    return _get("clip", scale, VideoTextCLIP, cfg.clip, cfg.clip_train, train_clip, _clip_eval,
                run_root=run_root, device=device, retrain=retrain, progress=progress)


def get_captioner(scale: str = "tiny", *, run_root="runs", device="cpu", retrain: bool = False,
                  progress: bool = True):
    """The scale's trained ``VideoCaptioner`` (held-out caption scores in ``<folder>/metrics.json``)."""
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
