"""Autoencoders by scale: ``get_autoencoder(scale, kind=...)`` loads or trains one of the six kinds."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import torch

from sora_mini.artifacts.store import (
    LOG_NAME,
    TRAINER_NAME,
    clear_part,
    is_complete,
    part_dir,
    write_training_info,
)
from sora_mini.config import SCALES, ScaleConfig, get_config
from sora_mini.pretrained import config_to_dict

AUTOENCODER_KINDS = ("3d_kl", "2d_kl", "3d_vq", "2d_vq", "3d_fsq", "2d_fsq")
DEFAULT_AUTOENCODER = "3d_kl"  # the one the diffusion notebooks use


def _check_kind(kind: str) -> tuple[str, str]:
    if kind not in AUTOENCODER_KINDS:
        raise ValueError(f"unknown autoencoder kind {kind!r}; choose one of {', '.join(AUTOENCODER_KINDS)}")
    arch, bottleneck = kind.split("_")
    return arch, bottleneck


def autoencoder_config(cfg: ScaleConfig | str, kind: str = DEFAULT_AUTOENCODER):
    """The :class:`AutoencoderConfig` of ``kind`` at a scale.

    All kinds share one latent size: the 2D per-frame model keeps every frame, so it gets
    ``latent_channels / temporal_factor`` channels to hold as many numbers as the 3D model's
    ``latent_channels`` on ``1 + (T-1)/k`` latent frames.
    """
    from sora_mini.compression.autoencoder import AutoencoderConfig

    c = get_config(cfg).compression
    arch, bottleneck = _check_kind(kind)
    tf = c.temporal_factor if arch == "3d" else 1
    channels = c.latent_channels if arch == "3d" else max(1, c.latent_channels // c.temporal_factor)
    return AutoencoderConfig(arch=arch, bottleneck=bottleneck, spatial_factor=c.spatial_factor,
                             temporal_factor=tf, latent_channels=channels, base_channels=c.base_channels,
                             num_blocks=c.num_blocks, patch=c.patch, mid_blocks=c.mid_blocks,
                             deep_mult=c.deep_mult, frame_levels=c.frame_levels if arch == "3d" else 0,
                             time_patch=c.time_patch if arch == "3d" else 1,
                             temporal_upsample=c.temporal_upsample,
                             kl_weight=c.kl_weight,
                             codebook_size=c.codebook_size, fsq_levels=(c.fsq_level,) * channels)


def autoencoder_training(cfg: ScaleConfig | str, **overrides):
    """The :class:`~sora_mini.train.AutoencoderTraining` of a scale's preset, with field overrides
    (e.g. ``steps=3``, ``seed=1``)."""
    from sora_mini.train.autoencoder import AutoencoderTraining

    c = get_config(cfg).compression
    preset = AutoencoderTraining(steps=c.train_steps, lr=c.lr, batch_size=c.batch_size, crop=c.train_crop,
                                 temporal_weight=c.temporal_weight)
    return dataclasses.replace(preset, **overrides)


def autoencoder_dir(scale: ScaleConfig | str, *, kind: str = DEFAULT_AUTOENCODER,
                    run_root: str | os.PathLike = "runs", **training) -> Path:
    """The folder of ``kind`` at ``scale``: ``<run_root>/<scale>/autoencoder_<kind>-<hash>`` where
    the hash covers the model config, the training recipe (``training`` overrides it) and the world."""
    cfg = get_config(scale)
    return part_dir(run_root, cfg.name, f"autoencoder_{kind}", autoencoder_config(cfg, kind),
                    autoencoder_training(cfg, **training), cfg.world)


def load_autoencoder(folder_or_scale, kind: str = DEFAULT_AUTOENCODER, *,
                     run_root: str | os.PathLike = "runs", device="cpu"):
    """Load a trained autoencoder: from its folder, or the ``kind`` of a scale's preset (a scale name).

    Returns the model in eval mode with its stored latent ``scale_factor``; a clear
    ``FileNotFoundError`` when it was never trained (use :func:`get_autoencoder` to train it).
    """
    from sora_mini.compression.autoencoder import VideoAutoencoder

    if isinstance(folder_or_scale, ScaleConfig) or folder_or_scale in SCALES:
        scale = get_config(folder_or_scale)
        folder = autoencoder_dir(scale, kind=kind, run_root=run_root)
        if not is_complete(folder):
            raise FileNotFoundError(f"no {kind} autoencoder trained for scale {scale.name!r} at {folder}; "
                                    f"train it with get_autoencoder({scale.name!r}, kind={kind!r}) or notebook 01")
    else:
        folder = Path(folder_or_scale)
        if not is_complete(folder):
            raise FileNotFoundError(f"{folder} holds no trained autoencoder (no config.json, model.safetensors "
                                    "and training.json); train one with get_autoencoder(scale, kind=...)")
    return VideoAutoencoder.from_pretrained(folder, device=device)


def _train_autoencoder_into(folder: Path, cfg: ScaleConfig, kind: str, training, *, device, progress) -> None:
    """Train ``kind`` with ``training``, measure and set its latent scale factor, save it into
    ``folder`` (model, then ``training.json``); resumes from the trainer's checkpoint there."""
    from sora_mini.compression.autoencoder import VideoAutoencoder
    from sora_mini.compression.data import WorldBatches
    from sora_mini.convert import video_to_model
    from sora_mini.train.autoencoder import latent_scale_factor, train_autoencoder

    torch.manual_seed(training.seed)
    model = VideoAutoencoder(autoencoder_config(cfg, kind))
    batches = WorldBatches(cfg.world, training.batch_size, seed=training.seed, spatial_factor=model.spatial_factor,
                           temporal_factor=model.temporal_factor, crop=training.crop)
    t0 = time.perf_counter()
    trainer = train_autoencoder(model, batches, training, device=device, progress=progress,
                                ckpt_path=folder / TRAINER_NAME, log_path=folder / LOG_NAME)
    seconds = time.perf_counter() - t0
    final = trainer.eval_model()
    calib = batches.indices[: training.calibration_batches * training.batch_size]
    scale_factor = latent_scale_factor(final, [video_to_model(batches.video(i))[0] for i in calib])
    final.set_scale_factor(scale_factor)
    final.save_pretrained(folder)
    write_training_info(folder, {
        "scale": cfg.name, "kind": kind, "steps": training.steps, "seed": training.seed,
        "train_seconds": round(seconds, 1), "device": str(device), "precision": trainer.precision,
        "scale_factor": scale_factor,
        "ema": training.ema_decay is not None, "final": trainer.history[-1] if trainer.history else {},
        "training": config_to_dict(training)})


def get_autoencoder(scale: ScaleConfig | str, *, kind: str = DEFAULT_AUTOENCODER,
                    run_root: str | os.PathLike = "runs", device="cpu", retrain: bool = False,
                    progress: bool = True, **training):
    """The ``kind`` autoencoder of ``scale``, loaded from its folder (:func:`autoencoder_dir`) or
    trained there with the scale's preset when missing; eval mode, on ``device``.

    ``run_root`` is the notebooks' ``RUN_DIR``. ``training`` overrides fields of the training recipe
    (``AutoencoderTraining``: ``steps``, ``seed``, ...); each setting trains its own folder.
    ``retrain=True`` trains that folder again from scratch.
    """
    cfg = get_config(scale)
    folder = autoencoder_dir(cfg, kind=kind, run_root=run_root, **training)
    if retrain:
        clear_part(folder)
    if not is_complete(folder):
        _train_autoencoder_into(folder, cfg, kind, autoencoder_training(cfg, **training), device=device,
                                progress=progress)
    try:
        return load_autoencoder(folder, device=device)
    except ValueError as e:  # a damaged or mismatched file: say how to start over
        raise ValueError(f"{e}. Train it again with get_autoencoder({cfg.name!r}, kind={kind!r}, "
                         "retrain=True)") from e
