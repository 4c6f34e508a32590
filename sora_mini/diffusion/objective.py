"""The training objective shared by DDPM and flow matching: noise the data, regress a target.

Shapes: ``x0`` [B, ...] (a video latent [B, C, T, H, W], an image [B, C, H, W], tokens [B, N, D] or
2D points [B, 2]); ``t`` [B]; an optional frame/token ``mask`` [B, T] or [B, N] (True = generated,
False = a clean condition, as in Open-Sora's MaskGenerator). Ho et al. 2020, Algorithm 1.

The model interface, for every backbone: ``model_fn(x_t, t, **cond) -> prediction`` with the shape
of ``x_t``. ``t`` is a float tensor [B] (or [B, T] per frame, see ``frame_timesteps``). One place
decides its units, the objective (``with_model_time``), in training and sampling alike:

- a model that declares ``timestep_range = (0, M)`` (every backbone of ``sora_mini.models`` and the
  toys of notebook 03 declare DiT's (0, 1000)) sees ``t * timestep_scale * M / 1000``: DDPM's
  integer timesteps 0..999 as they are, flow-matching times in [0, 1] times 1000;
- any other callable (a plain function) sees the objective's own units: DDPM 0..999, flow [0, 1].

So pass a backbone itself to ``training_loss``, ``make_loss_fn`` and ``samplers.sample`` (there is
no ``backbone_fn`` wrapper any more: forgetting it cannot happen). A backbone refuses t outside its
range (``check_model_timesteps``), so a time converted twice (flow t times 10^6) is an error with
the fix in its message, not a silent bug.
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


DIT_TIMESTEP_MAX = 1000.0  # the top of DiT's timestep scale, the one every backbone here takes


def check_model_timesteps(t: torch.Tensor, timestep_range, who: str) -> torch.Tensor:
    """``t`` as it is, or a ValueError when it leaves the ``timestep_range`` a model declares.

    The message says what to do: pass the model itself to ``sample`` / ``training_loss`` (they put
    the objective's time on the model's scale), not a function that converts it a second time.
    """
    lo, hi = timestep_range
    t = torch.as_tensor(t)
    if t.numel() and (bool(torch.isnan(t).any()) or t.min() < lo or t.max() > hi):
        raise ValueError(
            f"{who} takes timesteps in [{lo:g}, {hi:g}], got values in [{t.min().item():g}, {t.max().item():g}]. "
            f"sample(), training_loss() and make_loss_fn() convert the objective's time for a model that declares "
            f"timestep_range: pass the model itself, not objective.backbone_fn(model) or a function that "
            f"multiplies t by 1000 again; called directly, it takes DDPM timesteps 0..999 or flow t * 1000")
    return t


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
    timestep_scale: float = 1.0  # t * timestep_scale is on DiT's 0..1000 scale
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

    def model_time_scale(self, model) -> float:
        """What this objective's t is multiplied by for ``model``: ``timestep_scale * M / 1000`` for a
        model that declares ``timestep_range = (0, M)``, 1 for anything else."""
        declared = getattr(model, "timestep_range", None)
        if declared is None:
            return 1.0
        lo, hi = declared
        if lo != 0 or not hi > 0:
            raise ValueError(f"{type(model).__name__} declares timestep_range {declared}; the objective converts "
                             f"into ranges (0, M) only, e.g. DiT's (0, {DIT_TIMESTEP_MAX:g})")
        return self.timestep_scale * hi / DIT_TIMESTEP_MAX

    def with_model_time(self, model: ModelFn) -> ModelFn:
        """``model`` as a function of this objective's t (see the module docstring): a model that
        declares ``timestep_range = (0, M)`` sees ``t * timestep_scale * M / 1000``, anything else t."""
        scale = self.model_time_scale(model)
        if scale == 1:
            return model

        def in_model_time(x_t, t, **cond):
            return model(x_t, t * scale, **cond)

        return in_model_time

    def clean_time(self) -> float:
        """The value of t that means 'clean data' (given to condition frames)."""
        return 0.0

    # -- shared ---------------------------------------------------------------------------------
    def training_loss(self, model_fn: ModelFn, x0: torch.Tensor, cond: dict | None = None,
                      mask: torch.Tensor | None = None, *, t: torch.Tensor | None = None,
                      noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                      frame_timesteps: bool = False, reduction: str = "mean") -> torch.Tensor:
        """The denoising regression loss ||model_fn(x_t, t) - target||^2 (Ho et al., Algorithm 1).

        ``model_fn``: a backbone itself (its t is converted, see ``with_model_time``) or a function.
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
        pred = self.with_model_time(model_fn)(x_t, t_model, **(cond or {}))
        if pred.shape != target.shape:
            raise ValueError(f"the model returned shape {tuple(pred.shape)} but the target has "
                             f"shape {tuple(target.shape)}; the prediction must match x_t")
        per_example = masked_mean((pred.float() - target.float()) ** 2, mask)  # [B]
        return per_example.mean() if reduction == "mean" else per_example


def make_loss_fn(objective: DiffusionObjective, *, x_key: str = "x", cond_keys=(),
                 mask_key: str | None = None, frame_timesteps: bool = False):
    """``loss_fn(model, batch) -> (loss, metrics)`` for ``sora_mini.train.loop.Trainer``.

    ``batch`` is a dict: ``batch[x_key]`` the clean data [B, ...], ``batch[k]`` for ``k`` in
    ``cond_keys`` passed to the model as keywords, ``batch[mask_key]`` the frame mask [B, T].
    The model's timesteps are converted by ``objective.training_loss`` (see ``with_model_time``).
    """
    def loss_fn(model, batch):
        mask = batch[mask_key] if mask_key is not None else None
        loss = objective.training_loss(model, batch[x_key], {k: batch[k] for k in cond_keys}, mask=mask,
                                       frame_timesteps=frame_timesteps)
        return loss, {}

    return loss_fn
