"""Training an autoencoder: the reconstruction loss, the loop, and the latent scaling factor.

Shapes: videos ``[B, 3, T, H, W]`` in [-1, 1]. The loss is ``MSE + l1_weight * L1`` on pixels plus
the bottleneck's own term (KL or commitment). LDM adds a perceptual (LPIPS) and a GAN loss; the
world's flat shapes need neither, and both need pretrained networks this workbook does without.
"""

from __future__ import annotations

import math

import torch

from sora_mini.compression.autoencoder import VideoAutoencoder
from sora_mini.train.loop import Trainer, TrainerConfig


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


def train_autoencoder(model: VideoAutoencoder, batches, steps: int, lr: float = 1e-3, *,
                      precision: str = "bf16", device="cpu", ckpt_path=None, log_path=None,
                      progress: bool = True, desc: str | None = None, warmup_steps: int | None = None,
                      l1_weight: float = 0.5, temporal_weight: float = 0.0, callbacks=()) -> list[dict]:
    """Train ``model`` on ``batches(step) -> [B, 3, T, H, W]`` for ``steps`` AdamW steps; history rows."""
    cfg = TrainerConfig(steps=steps, lr=lr, betas=(0.9, 0.99), weight_decay=0.0,
                        warmup_steps=min(100, steps // 10) if warmup_steps is None else warmup_steps,
                        grad_clip=1.0, precision=precision, log_every=max(1, min(50, steps // 20)),
                        progress=progress, desc=desc or f"autoencoder {model.config.kind}")
    model.to(device)

    def data(step):
        return batches(step).to(device)

    def loss_fn(m, video):
        return reconstruction_loss(m, video, l1_weight, temporal_weight)

    trainer = Trainer(model, loss_fn, data, cfg, device=device, ckpt_path=ckpt_path,
                      log_path=log_path, model_config=model.config.to_dict(), callbacks=callbacks)
    return trainer.fit()


@torch.no_grad()
def compute_scale_factor(model: VideoAutoencoder, videos: list[torch.Tensor], device="cpu") -> float:
    """Set ``model.scale_factor = 1 / std(latent)`` over ``videos`` (each ``[3, T, H, W]``) and
    return it, so that ``encode`` gives latents of unit variance (LDM's ``scale_by_std``)."""
    model.eval()
    model.scale_factor.fill_(1.0)
    latents = [model.encode(v.unsqueeze(0).to(device)).flatten() for v in videos]
    std = torch.cat(latents).float().std().item()
    if not math.isfinite(std) or std <= 0:
        raise ValueError(f"latent std is {std}: the encoder is degenerate (train it first)")
    model.scale_factor.fill_(1.0 / std)
    return 1.0 / std
