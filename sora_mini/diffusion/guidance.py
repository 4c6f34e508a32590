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


def check_guidance_interval(interval) -> tuple[float, float] | None:
    """``(lo, hi)`` as floats with ``lo < hi``, or None (guidance at every step); else a ValueError."""
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError) as e:
        raise ValueError(f"guidance interval must be (lo, hi), two times with lo < hi, or None; got {interval!r}") from e
    if not lo < hi:
        raise ValueError(f"guidance interval ({lo}, {hi}) is empty: give lo < hi (times of the objective, e.g. "
                         f"(0.3, 1.0) for flow matching: guided while 0.3 < t <= 1)")
    return lo, hi


def guided(model_fn: ModelFn, scale: float = 1.0, cond: dict | None = None,
           uncond: dict | None = None, interval: tuple[float, float] | None = None) -> ModelFn:
    """A ``fn(x_t, t)`` that returns the guided prediction for ``cond`` against ``uncond``.

    Shapes: ``x_t`` [B, ...], ``t`` [B] (or per frame [B, T]) -> [B, ...]. Scale 1 (or no
    ``uncond``) runs the conditional model alone; scale 0 the unconditional one; otherwise both in
    one batch of 2B when the conditions are tensors of equal shapes (as DiT's ``forward_with_cfg``
    does), else in two calls. ``interval`` (lo, hi): guide only while lo < t <= hi (t the noise
    level of the generated frames, ``t.max()``), the conditional model alone elsewhere, at half the
    cost (guidance in a limited interval: Kynkaanniemi et al. 2024, arXiv 2404.07724).
    """
    scale = check_guidance_scale(scale)
    interval = check_guidance_interval(interval)
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
        if interval is not None and not interval[0] < float(t.max()) <= interval[1]:
            return model_fn(x, t, **cond)  # outside the interval: unguided
        if both is not None:
            t2 = torch.cat([t, t]) if t.ndim else t
            out_c, out_u = model_fn(torch.cat([x, x]), t2, **both).chunk(2)  # [2B, ...] -> 2 x [B, ...]
        else:
            out_c, out_u = model_fn(x, t, **cond), model_fn(x, t, **uncond)
        return out_u + scale * (out_c - out_u)

    return fn
