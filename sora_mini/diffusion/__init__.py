"""Diffusion: noise schedules, the DDPM and flow-matching objectives, samplers and guidance.

Two objectives share one interface (``objective.py``): ``GaussianDiffusion`` (DDPM; eps, v or x0
prediction; integer t in 0..T-1) and ``FlowMatching`` (rectified flow; velocity noise - x0; t in
[0, 1]). Both give ``training_loss(model_fn, x0, cond, mask)`` for the trainer; ``sample`` turns a
trained ``model_fn(x_t, t, **cond)`` into data with any registered sampler (``SAMPLERS``).
"""

from .ddpm import PREDICTION_TYPES, GaussianDiffusion
from .flow import FlowMatching, resolution_shift, shift_mu, timestep_shift
from .guidance import cfg_combine, check_guidance_scale, guided
from .objective import DiffusionObjective, make_loss_fn, masked_mean, with_timestep_scale
from .samplers import (
    SAMPLERS,
    count_evals,
    ddim_step,
    ddpm_step,
    ddpm_timesteps,
    euler_step,
    get_sampler,
    heun_step,
    sample,
)
from .schedules import BETA_SCHEDULES, NoiseSchedule, broadcast_like, make_betas

OBJECTIVES = ("ddpm", "flow")


def make_objective(name: str = "flow", **kwargs) -> DiffusionObjective:
    """``"ddpm"`` -> GaussianDiffusion(**kwargs), ``"flow"`` -> FlowMatching(**kwargs)."""
    if name == "ddpm":
        return GaussianDiffusion(**kwargs)
    if name == "flow":
        return FlowMatching(**kwargs)
    raise ValueError(f"unknown objective {name!r}; allowed: {', '.join(OBJECTIVES)}")


__all__ = [
    "BETA_SCHEDULES", "OBJECTIVES", "PREDICTION_TYPES", "SAMPLERS", "DiffusionObjective",
    "FlowMatching", "GaussianDiffusion", "NoiseSchedule", "broadcast_like", "cfg_combine",
    "check_guidance_scale", "count_evals", "ddim_step", "ddpm_step", "ddpm_timesteps", "euler_step",
    "get_sampler", "guided", "heun_step", "make_betas", "make_loss_fn", "make_objective", "masked_mean",
    "resolution_shift", "sample", "shift_mu", "timestep_shift", "with_timestep_scale",
]
