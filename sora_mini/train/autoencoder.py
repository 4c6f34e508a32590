"""Training an autoencoder: the recipe's settings, the reconstruction loss, the loop, and the latent
scaling factor.

Shapes: videos ``[B, 3, T, H, W]`` in [-1, 1]. The loss is ``MSE + l1_weight * L1`` on pixels plus
the bottleneck's own term (KL or commitment). LDM adds a perceptual (LPIPS) and a GAN loss; the
world's flat shapes need neither, and both need pretrained networks this workbook does without.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sora_mini.compression.autoencoder import VideoAutoencoder
from sora_mini.pretrained import config_to_dict
from sora_mini.train.loop import Trainer, TrainerConfig


@dataclass(frozen=True)
class AutoencoderTraining:
    """How an autoencoder is trained (everything but the architecture): part of the cache key of
    ``artifacts.get_autoencoder``, so changing any field trains a new model."""

    steps: int = 60
    lr: float = 2e-3
    batch_size: int = 4
    crop: tuple[int, int, int] | None = (9, 32, 32)  # (T, H, W) random training windows; None: whole
    l1_weight: float = 0.5
    temporal_weight: float = 0.0  # weight of the frame-difference (flicker) loss term
    warmup_steps: int | None = None  # None: min(100, steps // 10)
    ema_decay: float | None = None  # keep an EMA of the weights and save it as the model
    precision: str = "bf16"
    seed: int = 0
    calibration_batches: int = 4  # batches of training videos that measure the latent scale factor


def reconstruction_loss(model: VideoAutoencoder, video: torch.Tensor, l1_weight: float = 0.5,
                        temporal_weight: float = 0.0):
    """``(loss, metrics)`` for one batch ``[B, 3, T, H, W]`` (the ``loss_fn`` of :class:`Trainer`).

    ``temporal_weight`` adds ``|d_t x_hat - d_t x|``, the L1 error of frame differences (what
    ``temporal_flicker`` measures), so the model is asked to change between frames as the video does.
    """
    out = model(video)
    err = out.recon.float() - video
    mse = err.pow(2).mean()
    loss = mse + l1_weight * err.abs().mean() + out.bottleneck.loss
    if temporal_weight and video.shape[2] > 1:
        loss = loss + temporal_weight * err.diff(dim=2).abs().mean()  # d_t(x_hat - x) = d_t x_hat - d_t x
    metrics = {"mse": mse.item(), "psnr": 10 * math.log10(4.0 / max(mse.item(), 1e-10)),  # range 2
               **{k: v for k, v in out.bottleneck.metrics.items()}}
    return loss, metrics


def train_autoencoder(model: VideoAutoencoder, batches, training: AutoencoderTraining, *,
                      device="cpu", ckpt_path=None, log_path=None, progress: bool = True,
                      desc: str | None = None, callbacks=()) -> Trainer:
    """Train ``model`` on ``batches(step) -> [B, 3, T, H, W]`` with ``training``'s AdamW steps.

    Returns the fitted :class:`Trainer`: ``.history`` holds the logged rows, ``.eval_model()`` the
    model to save (the EMA weights when ``training.ema_decay`` is set). With ``ckpt_path`` the run
    resumes from its checkpoint.
    """
    steps = training.steps
    cfg = TrainerConfig(steps=steps, lr=training.lr, betas=(0.9, 0.99), weight_decay=0.0,
                        warmup_steps=min(100, steps // 10) if training.warmup_steps is None
                        else training.warmup_steps,
                        grad_clip=1.0, precision=training.precision, ema_decay=training.ema_decay,
                        log_every=max(1, min(50, steps // 20)), progress=progress,
                        desc=desc or f"autoencoder {model.config.kind}")

    def loss_fn(m, video):
        return reconstruction_loss(m, video, training.l1_weight, training.temporal_weight)

    trainer = Trainer(model, loss_fn, batches, cfg, device=device, ckpt_path=ckpt_path,
                      log_path=log_path, model_config=config_to_dict(model.config), callbacks=callbacks)
    trainer.fit()
    return trainer


@torch.no_grad()
def latent_scale_factor(model: VideoAutoencoder, videos) -> float:
    """``1 / std(latent)`` over ``videos``: the scale that gives ``encode`` unit-variance latents
    (LDM's ``scale_by_std``). The model is not changed: set the value with
    ``model.set_scale_factor(s)``.

    ``videos``: a batch ``[B, 3, T, H, W]`` or a list of ``[3, T, H, W]`` videos of any sizes the
    model takes; each is encoded on the model's device (posterior mean / code vectors, unscaled).
    """
    if torch.is_tensor(videos):
        if videos.ndim != 5:
            raise ValueError(f"expected a batch [B, 3, T, H, W] or a list of [3, T, H, W] videos, "
                             f"got a tensor of shape {tuple(videos.shape)}")
        videos = list(videos)
    if not videos:
        raise ValueError("latent_scale_factor needs at least one video")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        latents = [model.encode_unscaled(v.unsqueeze(0).to(device)).flatten().float() for v in videos]
    finally:
        model.train(was_training)
    std = torch.cat(latents).std().item()
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"latent std is {std}: the encoder is degenerate (train it first)")
    return 1.0 / std
