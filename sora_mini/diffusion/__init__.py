"""Diffusion: noise schedules, the DDPM and flow-matching objectives, samplers and guidance.

Two objectives share one interface (``objective.py``): ``GaussianDiffusion`` (DDPM; eps, v or x0
prediction; integer t in 0..T-1) and ``FlowMatching`` (rectified flow; velocity noise - x0; t in
[0, 1]). The objective is the one place that puts its t on a model's scale, in training and
sampling alike: a backbone declares ``timestep_range = (0, 1000)`` (DiT's scale) and is passed as
it is; a plain function sees the objective's own t.

API
---
make_objective("ddpm" | "flow", **kw) -> GaussianDiffusion(num_train_timesteps, beta_schedule,
    prediction) | FlowMatching(timestep_sampling, shift)
objective.training_loss(model, x0 [B, ...], cond=dict, mask=[B, T] | None, frame_timesteps=False)
    -> scalar (or [B] with reduction="none"); make_loss_fn(objective, x_key, cond_keys, mask_key)
    -> loss_fn(model, batch) for the Trainer
objective.with_model_time(model) -> fn(x_t, t_objective, **cond)   (what both of the above use)
check_model_timesteps(t, timestep_range, who)   (a backbone's guard: t outside its range raises)
sample(model, objective, shape, *, sampler=None, steps=50, guidance_scale=1.0, cond=None,
       uncond=None, generator=None, device=None, noise=None, options=None, frames=None,
       sdedit=None, progress=True, return_trajectory=False) -> x [B, ...] (, trajectory)
    options:  GaussianOptions(spacing="trailing", eta=0.0, clip_x0=None)   for "ddpm" / "ddim"
              FlowOptions(shift=None, mu=None, grid="uniform", eta=1.0)    for "euler" / "heun" / "ancestral"
    frames:   FrameCondition(known [B, ...], mask [B, T] bool (True = generate), frame_timesteps=False)
    sdedit:   SDEdit(init [B, ...], strength in (0, 1])
SAMPLERS / get_sampler(name, objective) -> SamplerInfo(name, kind, options, evals_per_step, step)
count_evals(sampler, steps); ddpm_step / ddim_step / euler_step / heun_step / flow_ancestral_step (one update each)
ddpm_timesteps(T, steps, spacing); FlowMatching.sampling_times(steps, shift, mu, grid)
guided(model_fn, scale, cond, uncond) -> fn(x, t); cfg_combine(cond_out, uncond_out, scale)
timestep_shift(t, alpha); resolution_shift(tokens, frames); shift_mu(tokens)
NoiseSchedule, make_betas(name, T), broadcast_like(v, x), masked_mean(err, mask)
"""

from .ddpm import PREDICTION_TYPES, GaussianDiffusion
from .flow import FlowMatching, resolution_shift, shift_mu, timestep_shift
from .guidance import cfg_combine, check_guidance_scale, guided
from .objective import DiffusionObjective, check_model_timesteps, make_loss_fn, masked_mean
from .options import SPACINGS, FlowOptions, FrameCondition, GaussianOptions, SDEdit, ddpm_timesteps
from .samplers import (
    SAMPLERS,
    SamplerInfo,
    count_evals,
    ddim_step,
    ddpm_step,
    euler_step,
    flow_ancestral_step,
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
    "BETA_SCHEDULES", "OBJECTIVES", "PREDICTION_TYPES", "SAMPLERS", "SPACINGS", "DiffusionObjective",
    "FlowMatching", "FlowOptions", "FrameCondition", "GaussianDiffusion", "GaussianOptions", "NoiseSchedule",
    "SDEdit", "SamplerInfo", "broadcast_like", "cfg_combine", "check_guidance_scale", "check_model_timesteps",
    "count_evals", "ddim_step", "ddpm_step", "ddpm_timesteps", "euler_step", "flow_ancestral_step", "get_sampler", "guided",
    "heun_step", "make_betas", "make_loss_fn", "make_objective", "masked_mean", "resolution_shift", "sample",
    "shift_mu", "timestep_shift",
]
