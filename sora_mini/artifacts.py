"""Get-or-train by scale: every trained model a notebook needs lives in ``runs/<scale>/`` and is
trained there, with the scale's preset, when it is missing.

``get_autoencoder("small")`` loads ``runs/small/autoencoder_3d_kl.{safetensors,json}`` or trains it
(the latent scaling factor is computed from training videos and stored with the weights).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from sora_mini.config import SCALES, ScaleConfig, get_config
from sora_mini.paths import run_dir as resolve_run_dir

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


def autoencoder_path(run: str | os.PathLike, kind: str = DEFAULT_AUTOENCODER) -> Path:
    """``<run>/autoencoder_<kind>`` (the checkpoint stem: ``.safetensors`` + ``.json``)."""
    _check_kind(kind)
    return Path(run) / f"autoencoder_{kind}"


def _resolve_run(run_dir_or_scale, run_root="runs") -> Path:
    if isinstance(run_dir_or_scale, str) and run_dir_or_scale in SCALES:
        return resolve_run_dir(run_root, run_dir_or_scale, create=False)
    return Path(run_dir_or_scale)


def load_autoencoder(run_dir_or_scale, kind: str = DEFAULT_AUTOENCODER, device="cpu"):
    """Load a trained autoencoder from a run folder (or ``runs/<scale>/`` given a scale name).

    Returns the model in eval mode with its stored latent ``scale_factor``; a clear
    ``FileNotFoundError`` when it was never trained (use :func:`get_autoencoder` to train it).
    """
    from sora_mini.compression.autoencoder import AutoencoderConfig, VideoAutoencoder

    path = autoencoder_path(_resolve_run(run_dir_or_scale), kind)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no {kind} autoencoder at {path}; train it with "
                                f"get_autoencoder(scale, kind={kind!r}) or notebook 01")
    state, config, extra = load_checkpoint(path, device=device)
    model = VideoAutoencoder(AutoencoderConfig.from_dict(config))
    model.load_state_dict(state)
    model.train_info = extra  # how it was trained and what it measured
    return model.to(device).eval()


def train_autoencoder_for_scale(scale: ScaleConfig | str, kind: str = DEFAULT_AUTOENCODER, *,
                                run: str | os.PathLike | None = None, steps: int | None = None,
                                device="cpu", seed: int = 0, progress: bool = True,
                                precision: str = "bf16"):
    """Train ``kind`` with the scale's preset, calibrate its scale factor and, when ``run`` is
    given, save it there (atomically) with its training log. Returns the model (eval mode)."""
    from sora_mini.compression.autoencoder import VideoAutoencoder
    from sora_mini.compression.data import WorldBatches
    from sora_mini.train.autoencoder import compute_scale_factor, train_autoencoder

    cfg = get_config(scale)
    c = cfg.compression
    torch.manual_seed(seed)
    model = VideoAutoencoder(autoencoder_config(cfg, kind))
    batches = WorldBatches(cfg.world, c.batch_size, seed=seed, spatial_factor=model.spatial_factor,
                           temporal_factor=model.temporal_factor, crop=c.train_crop)
    steps = c.train_steps if steps is None else steps
    path = autoencoder_path(run, kind) if run is not None else None
    t0 = time.perf_counter()
    history = train_autoencoder(
        model, batches, steps, c.lr, precision=precision, device=device, progress=progress,
        temporal_weight=c.temporal_weight,
        ckpt_path=None if path is None else path.with_name(path.name + ".train"),
        log_path=None if path is None else path.with_name(path.name + ".log.jsonl"))
    seconds = time.perf_counter() - t0
    calib = [batches.video(i) for i in batches.indices[: 4 * c.batch_size]]
    from sora_mini.convert import video_to_model

    scale_factor = compute_scale_factor(model, [video_to_model(v)[0] for v in calib], device=device)
    model.train_info = {"scale": cfg.name, "kind": kind, "steps": steps, "seed": seed,
                        "train_seconds": round(seconds, 1), "scale_factor": scale_factor,
                        "final": history[-1] if history else {}}
    if path is not None:
        save_checkpoint(path, model.state_dict(), model.config.to_dict(), model.train_info)
    return model.eval()


def get_autoencoder(scale: str = "tiny", run_dir: str | os.PathLike = "runs",
                    kind: str = DEFAULT_AUTOENCODER, device="cpu", retrain: bool = False,
                    progress: bool = True):
    """Load ``runs/<scale>/autoencoder_<kind>`` or train it (with the scale's preset) and save it.

    ``run_dir`` is the ``RUN_DIR`` root (as in the notebooks' parameters cell) or the scale's
    folder itself. ``retrain=True`` trains again even when a checkpoint exists.
    """
    root = Path(run_dir)
    run = root if root.name == scale else resolve_run_dir(run_dir, scale)
    path = autoencoder_path(run, kind)
    if not retrain and checkpoint_exists(path):
        model = load_autoencoder(run, kind, device=device)
        if model.config == autoencoder_config(scale, kind):
            return model
        print(f"{path.name}: the stored model differs from the {scale!r} preset; training it again")
        retrain = True
    if retrain:  # start over: drop the training state and log of an earlier run
        for stale in (path.name + ".train.safetensors", path.name + ".train.json", path.name + ".log.jsonl"):
            (run / stale).unlink(missing_ok=True)
    train_autoencoder_for_scale(scale, kind, run=run, device=device, progress=progress)
    return load_autoencoder(run, kind, device=device)
