"""Classifier-free guidance: extrapolate from the unconditional prediction towards the conditional one.

Shapes: predictions [B, ...]; ``cond`` / ``uncond`` are dicts of model keyword arguments (tensors
with batch B, e.g. class ids [B] or caption embeddings [B, L, D]).
Ho & Salimans 2022 (arXiv 2207.12598): eps~ = (1 + w) eps(x, c) - w eps(x), i.e. s = 1 + w below.
The combination is linear, so it works the same for eps, v, x0 or flow-velocity predictions.
"""

from __future__ import annotations

import torch

from .objective import ModelFn


def check_guidance_scale(scale: float) -> float:
    """The scale as a float, or a ValueError: s >= 0 (0 = unconditional, 1 = conditional, >1 = guided)."""
    try:
        scale = float(scale)
    except (TypeError, ValueError) as e:
        raise ValueError(f"guidance scale must be a number >= 0, got {scale!r}") from e
    if not scale >= 0:  # also catches NaN
        raise ValueError(f"guidance scale must be >= 0 (0 = unconditional, 1 = plain conditional, "
                         f"> 1 = guided, typically 2-7); got {scale}")
    return scale


def cfg_combine(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + s (cond - uncond) (Ho & Salimans 2022, Eq. 6 with s = 1 + w)."""
    scale = check_guidance_scale(scale)
    return uncond_out + scale * (cond_out - uncond_out)


def _batchable(cond: dict, uncond: dict) -> bool:
    """Both dicts hold tensors under the same keys with equal shapes: one forward of batch 2B works."""
    if cond.keys() != uncond.keys():
        return False
    return all(isinstance(cond[k], torch.Tensor) and isinstance(uncond[k], torch.Tensor)
               and cond[k].shape == uncond[k].shape for k in cond)


def guided(model_fn: ModelFn, scale: float = 1.0, cond: dict | None = None,
           uncond: dict | None = None) -> ModelFn:
    """A ``fn(x_t, t)`` that returns the guided prediction for ``cond`` against ``uncond``.

    Shapes: ``x_t`` [B, ...], ``t`` [B] -> [B, ...]. Scale 1 (or no ``uncond``) runs the conditional
    model alone; scale 0 the unconditional one; otherwise both in one batch of 2B when the
    conditions are tensors of equal shapes (as DiT's ``forward_with_cfg`` does), else in two calls.
    """
    scale = check_guidance_scale(scale)
    cond = dict(cond or {})
    if uncond is None:
        if scale != 1.0:
            raise ValueError(f"guidance scale {scale} needs the unconditional inputs: pass uncond= "
                             f"(e.g. the null class or an empty caption), or use guidance_scale=1")
        return lambda x, t: model_fn(x, t, **cond)
    uncond = dict(uncond)
    if scale == 1.0:
        return lambda x, t: model_fn(x, t, **cond)
    if scale == 0.0:
        return lambda x, t: model_fn(x, t, **uncond)
    both = {k: torch.cat([cond[k], uncond[k]]) for k in cond} if _batchable(cond, uncond) else None

    def fn(x, t):
        if both is not None:
            t2 = torch.cat([t, t]) if t.ndim else t
            out_c, out_u = model_fn(torch.cat([x, x]), t2, **both).chunk(2)  # [2B, ...] -> 2 x [B, ...]
        else:
            out_c, out_u = model_fn(x, t, **cond), model_fn(x, t, **uncond)
        return out_u + scale * (out_c - out_u)

    return fn
