"""The training objective shared by DDPM and flow matching: noise the data, regress a target.

Shapes: ``x0`` [B, ...] (a video latent [B, C, T, H, W], an image [B, C, H, W], tokens [B, N, D] or
2D points [B, 2]); ``t`` [B]; an optional frame/token ``mask`` [B, T] or [B, N] (True = generated,
False = a clean condition, as in Open-Sora's MaskGenerator). Ho et al. 2020, Algorithm 1.

The model interface, for every backbone: ``model_fn(x_t, t, **cond) -> prediction`` with the shape
of ``x_t``. ``t`` is a float tensor [B] (or [B, T] per frame, see ``frame_timesteps``) in the
objective's own units: DDPM integer timesteps 0..999, flow-matching times in [0, 1]. A timestep
embedder tuned for 0..1000 (DiT's sinusoids, ``sora_mini.models``) needs ``t * timestep_scale``
(1 for DDPM, 1000 for flow): the objective's ``backbone_fn(model)`` (used by ``make_loss_fn``) wraps
a backbone so, and the same wrapped function goes to ``samplers.sample``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .schedules import broadcast_like

ModelFn = Callable[..., torch.Tensor]


def randn_like_gen(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` on the generator's device."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def with_timestep_scale(model_fn: ModelFn, scale: float) -> ModelFn:
    """Wrap ``model_fn`` so that it sees ``t * scale`` (e.g. flow t in [0, 1] -> 0..1000 for DiT)."""
    def scaled(x_t, t, **cond):
        return model_fn(x_t, t * scale, **cond)

    return scaled


def masked_mean(err: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` over every axis but the batch, counting only where ``mask`` is True.

    Shapes: ``err`` [B, ...], ``mask`` [B, T] / [B, N] / broadcastable -> [B]. An example with
    nothing to generate gets loss 0 (its sum of weights is clamped to 1).
    """
    if mask is None:
        return err.flatten(1).mean(1)
    w = broadcast_like(mask.to(err.dtype), err).expand_as(err)
    return (err * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp(min=1.0)


class DiffusionObjective(nn.Module):
    """Base class: subclasses say how to draw t, how to noise x0 and what the model must predict."""

    kind: str = ""  # "gaussian" (DDPM family) or "flow"
    timestep_scale: float = 1.0  # multiply t by this before a 0..1000 timestep embedder
    default_sampler: str = ""

    # -- to be provided by subclasses -------------------------------------------------------------
    def sample_timesteps(self, batch_size: int, *, device=None,
                         generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def check_timesteps(self, t) -> torch.Tensor:
        raise NotImplementedError

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backbone_fn(self, model: ModelFn) -> ModelFn:
        """``model_fn`` in this objective's units for a backbone on DiT's 0..1000 timestep scale."""
        return with_timestep_scale(model, self.timestep_scale) if self.timestep_scale != 1 else model

    def clean_time(self) -> float:
        """The value of t that means 'clean data' (given to condition frames)."""
        return 0.0

    # -- shared ---------------------------------------------------------------------------------
    def training_loss(self, model_fn: ModelFn, x0: torch.Tensor, cond: dict | None = None,
                      mask: torch.Tensor | None = None, *, t: torch.Tensor | None = None,
                      noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      frame_timesteps: bool = False, reduction: str = "mean") -> torch.Tensor:
        """The denoising regression loss ||model_fn(x_t, t) - target||^2 (Ho et al., Algorithm 1).

        Shapes: ``x0`` [B, ...]; ``mask`` [B, T] (video [B, C, T, H, W]) or [B, N] (tokens), True where
        a frame is generated; frames with False stay clean in ``x_t`` and are left out of the loss
        (Open-Sora 1.2). With ``frame_timesteps`` the model gets t [B, T] with the clean time at the
        condition frames. Returns a scalar (``reduction="mean"``) or [B] (``"none"``).
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"unknown reduction {reduction!r}; allowed: 'mean', 'none'")
        batch = x0.shape[0]
        if t is None:
            t = self.sample_timesteps(batch, device=x0.device, generator=generator)  # [B]
        t = torch.as_tensor(t, device=x0.device, dtype=torch.float32)
        self.check_timesteps(t)
        if noise is None:
            noise = randn_like_gen(x0, generator)
        x_t = self.q_sample(x0, t, noise)  # [B, ...] like x0
        target = self.target(x0, noise, t)
        t_model = t
        if mask is not None:
            mask = mask.to(device=x0.device, dtype=torch.bool)
            x_t = torch.where(broadcast_like(mask, x0), x_t, x0)  # condition frames stay clean
            if frame_timesteps:
                t_model = torch.where(mask, t.reshape(batch, 1), self.clean_time())  # [B, T]
        elif frame_timesteps:
            raise ValueError("frame_timesteps=True needs a frame mask [B, T]; pass mask=")
        pred = model_fn(x_t, t_model, **(cond or {}))
        if pred.shape != target.shape:
            raise ValueError(f"the model returned shape {tuple(pred.shape)} but the target has "
                             f"shape {tuple(target.shape)}; the prediction must match x_t")
        per_example = masked_mean((pred.float() - target.float()) ** 2, mask)  # [B]
        return per_example.mean() if reduction == "mean" else per_example


def make_loss_fn(objective: DiffusionObjective, *, x_key: str = "x", cond_keys=(),
                 mask_key: str | None = None, frame_timesteps: bool = False,
                 backbone_timesteps: bool = True):
    """``loss_fn(model, batch) -> (loss, metrics)`` for ``sora_mini.train.loop.Trainer``.

    ``batch`` is a dict: ``batch[x_key]`` the clean data [B, ...], ``batch[k]`` for ``k`` in
    ``cond_keys`` passed to the model as keywords, ``batch[mask_key]`` the frame mask [B, T].
    With ``backbone_timesteps`` the model is a backbone on DiT's 0..1000 timestep scale and sees
    ``t * objective.timestep_scale`` (flow t in [0, 1] -> 0..1000); this is where that happens.
    """
    def loss_fn(model, batch):
        fn = objective.backbone_fn(model) if backbone_timesteps else model
        mask = batch[mask_key] if mask_key is not None else None
        loss = objective.training_loss(fn, batch[x_key], {k: batch[k] for k in cond_keys}, mask=mask,
                                       frame_timesteps=frame_timesteps)
        return loss, {}

    return loss_fn
