"""Samplers: DDPM ancestral and DDIM for Gaussian diffusion, Euler and Heun for flow matching.

Shapes: ``x_t`` and model outputs [B, ...]; timesteps are Python numbers (one per step) or [B]
tensors. Each ``*_step`` is one update, testable alone against diffusers; ``sample`` runs the loop
with classifier-free guidance, clean condition frames (image-to-video, extension) and SDEdit.
Ho et al. 2020 Algorithm 2; Song et al. 2021 (DDIM, arXiv 2010.02502) Eq. 12; Karras et al. 2022
(EDM, arXiv 2206.00364) Algorithm 1 for Heun.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import torch
from tqdm.auto import tqdm

from .ddpm import GaussianDiffusion
from .guidance import check_guidance_scale, guided
from .objective import DiffusionObjective, ModelFn, randn_like_gen
from .schedules import broadcast_like

SPACINGS = ("trailing", "leading", "linspace")


@dataclass(frozen=True)
class SamplerInfo:
    name: str
    kind: str  # the objective it needs: "gaussian" or "flow"
    evals_per_step: int  # model evaluations per step (Heun: 2, except the last step)
    description: str


SAMPLERS: dict[str, SamplerInfo] = {
    "ddpm": SamplerInfo("ddpm", "gaussian", 1, "DDPM ancestral sampling (stochastic), Ho et al. 2020"),
    "ddim": SamplerInfo("ddim", "gaussian", 1, "DDIM, deterministic at eta=0, Song et al. 2021"),
    "euler": SamplerInfo("euler", "flow", 1, "Euler ODE steps on the flow velocity"),
    "heun": SamplerInfo("heun", "flow", 2, "Heun's 2nd-order ODE steps, Karras et al. 2022"),
}


def get_sampler(name: str, objective: DiffusionObjective | None = None) -> SamplerInfo:
    """The registry entry for ``name``; a clear error for an unknown name or the wrong objective."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; allowed: {', '.join(SAMPLERS)}")
    info = SAMPLERS[name]
    if objective is not None and info.kind != objective.kind:
        fits = [n for n, s in SAMPLERS.items() if s.kind == objective.kind]
        raise ValueError(f"sampler {name!r} needs a {info.kind} objective, but this one is "
                         f"{type(objective).__name__} ({objective.kind}); use one of {', '.join(fits)}")
    return info


def ddpm_timesteps(num_train_timesteps: int, steps: int, spacing: str = "trailing") -> list[int]:
    """Which integer timesteps a ``steps``-step sampler visits, descending (diffusers' spacings).

    trailing: [999, 899, ..., 99] (starts at pure noise; Lin et al. 2023, arXiv 2305.08891);
    leading: [900, 800, ..., 0] (diffusers' default); linspace: round(linspace(999, 0, steps)).
    """
    T = num_train_timesteps
    if spacing not in SPACINGS:
        raise ValueError(f"unknown timestep spacing {spacing!r}; allowed: {', '.join(SPACINGS)}")
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in 1..{T} (num_train_timesteps), got {steps}")
    if spacing == "leading":
        ts = [i * (T // steps) for i in range(steps)]
    elif spacing == "trailing":
        ts = [round(T - i * T / steps) - 1 for i in range(steps)][::-1]
    else:
        ts = torch.linspace(0, T - 1, steps, dtype=torch.float64).round().long().tolist()
    return sorted(ts, reverse=True)


# ----------------------------------------------------------------------------------------------
# One step each
# ----------------------------------------------------------------------------------------------
def _alpha_bars(diffusion: GaussianDiffusion, t, t_prev, x):
    ab = broadcast_like(diffusion.schedule.alpha_bar(t), x).to(x.dtype)
    ab_prev = broadcast_like(diffusion.schedule.alpha_bar(t_prev), x).to(x.dtype)  # -1 -> 1.0
    return ab, ab_prev


def _clipped(diffusion, x_t, t, model_output, clip_x0):
    x0, eps = diffusion.predict_x0_eps(x_t, t, model_output)
    if clip_x0 is not None:  # clip the predicted image, then re-derive eps from it
        x0 = x0.clamp(-clip_x0, clip_x0)
        a, s = diffusion._ab(t, x_t)
        eps = (x_t - a * x0) / s
    return x0, eps


def ddpm_step(diffusion: GaussianDiffusion, model_output: torch.Tensor, t, t_prev, x_t: torch.Tensor,
              *, noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
              clip_x0: float | None = None):
    """x_{t_prev} ~ q(x_{t_prev} | x_t, x0_hat): Algorithm 2 of Ho et al., with any stride t -> t_prev.

    Shapes: [B, ...] -> (x_prev [B, ...], x0_hat [B, ...]). With a stride, alpha_t and beta_t become
    alpha_bar_t / alpha_bar_prev and 1 - that (Nichol & Dhariwal 2021, respacing); ``t_prev = -1``
    is the last step to clean data, which adds no noise. Posterior mean: Eq. 7; variance beta~_t.
    """
    ab, ab_prev = _alpha_bars(diffusion, t, t_prev, x_t)
    alpha, beta = ab / ab_prev, 1 - ab / ab_prev
    x0, _ = _clipped(diffusion, x_t, t, model_output, clip_x0)
    mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (alpha.sqrt() * (1 - ab_prev) / (1 - ab)) * x_t
    var = ((1 - ab_prev) / (1 - ab) * beta).clamp(min=1e-20)  # beta~_t (Eq. 7), "fixed_small"
    if noise is None:
        noise = randn_like_gen(x_t, generator)
    last = broadcast_like(torch.as_tensor(t, device=x_t.device) <= 0, x_t)  # no noise into x_0
    return torch.where(last, mean, mean + var.sqrt() * noise), x0


def ddim_step(diffusion: GaussianDiffusion, model_output: torch.Tensor, t, t_prev, x_t: torch.Tensor,
              *, eta: float = 0.0, noise: torch.Tensor | None = None,
              generator: torch.Generator | None = None, clip_x0: float | None = None):
    """DDIM (Song et al. 2021, Eq. 12): x_prev = sqrt(ab') x0 + sqrt(1 - ab' - s^2) eps + s z.

    Shapes: [B, ...] -> (x_prev, x0_hat). s = eta sqrt((1-ab')/(1-ab) (1 - ab/ab')): eta=0 is the
    deterministic ODE-like sampler, eta=1 has DDPM's variance.
    """
    if eta < 0:
        raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like), got {eta}")
    ab, ab_prev = _alpha_bars(diffusion, t, t_prev, x_t)
    x0, eps = _clipped(diffusion, x_t, t, model_output, clip_x0)
    sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).sqrt()
    x_prev = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps
    if eta > 0:
        if noise is None:
            noise = randn_like_gen(x_t, generator)
        x_prev = x_prev + sigma * noise
    return x_prev, x0


def euler_step(v: torch.Tensor, t, t_next, x_t: torch.Tensor) -> torch.Tensor:
    """x_{t_next} = x_t + (t_next - t) v: one Euler step of dx/dt = v from t down to t_next."""
    dt = broadcast_like(torch.as_tensor(t_next, dtype=x_t.dtype, device=x_t.device)
                        - torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device), x_t)
    return x_t + dt * v


def heun_step(velocity_fn, v: torch.Tensor, t, t_next, x_t: torch.Tensor) -> torch.Tensor:
    """Heun (Karras et al. 2022, Alg. 1): an Euler guess, then the average of both end slopes.

    Shapes: [B, ...] -> [B, ...]. ``velocity_fn(x, t_next)`` is evaluated once more, except on a
    step to t_next = 0 (Euler there, as EDM does: the slope at pure data is not needed).
    """
    x_euler = euler_step(v, t, t_next, x_t)
    if float(torch.as_tensor(t_next).max()) == 0.0:
        return x_euler
    v_next = velocity_fn(x_euler, t_next)
    return euler_step((v + v_next) / 2, t, t_next, x_t)


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def sample(model_fn: ModelFn, objective: DiffusionObjective, shape, *, sampler: str | None = None,
           steps: int = 50, guidance_scale: float = 1.0, cond: dict | None = None,
           uncond: dict | None = None, generator: torch.Generator | None = None, device=None,
           eta: float = 0.0, spacing: str = "trailing", shift: float | None = None,
           mu: float | None = None, grid: str = "uniform", clip_x0: float | None = None,
           noise: torch.Tensor | None = None, known: torch.Tensor | None = None,
           mask: torch.Tensor | None = None, frame_timesteps: bool = False,
           init: torch.Tensor | None = None, strength: float = 1.0, progress: bool = True,
           return_trajectory: bool = False):
    """Generate a batch: noise -> ``steps`` sampler updates -> data. Shapes: ``shape`` = [B, ...].

    ``model_fn(x_t, t, **cond)`` follows the interface in ``objective.py``. ``known`` + ``mask``
    ([B, T], True = generate) keep condition frames clean at every step (Open-Sora's mask: I2V,
    extension); ``frame_timesteps`` gives the model t [B, T] with the clean time on them. ``init`` +
    ``strength`` in (0, 1] is SDEdit (Meng et al. 2021): noise ``init`` to the step that
    ``strength`` names and denoise from there (diffusers' img2img). ``shift``/``mu``/``grid``
    shape a flow schedule, ``spacing``/``eta``/``clip_x0`` a Gaussian one.
    Returns x [B, ...], or (x, [x after every step]) with ``return_trajectory``.
    """
    info = get_sampler(sampler or objective.default_sampler, objective)
    check_guidance_scale(guidance_scale)
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1] (1 = from pure noise), got {strength}")
    if (known is None) != (mask is None):
        raise ValueError("known= and mask= go together: the clean condition frames and where they are")
    if device is None:  # where the given tensors are, else the CPU
        given = [v for v in (noise, init, known) if v is not None]
        device = given[0].device if given else torch.device("cpu")
    device = torch.device(device)
    fn = guided(model_fn, guidance_scale, cond, uncond)
    batch = shape[0]

    if info.kind == "gaussian":
        ts = ddpm_timesteps(objective.num_train_timesteps, steps, spacing)
        pairs = list(zip(ts, ts[1:] + [-1]))  # (t, t_prev); -1 = clean
    else:
        times = objective.sampling_times(steps, shift=shift, mu=mu, grid=grid).tolist()
        pairs = list(pairwise(times))  # (t, t_next), from 1 down to 0
    x = noise.to(device) if noise is not None else torch.randn(
        tuple(shape), generator=generator, device=generator.device if generator else device).to(device)
    if init is not None:  # SDEdit: skip the first steps, start from the noised guide
        pairs = pairs[len(pairs) - int(len(pairs) * strength):]
        if not pairs:
            return (init, [init]) if return_trajectory else init
        t0 = torch.full((batch,), float(pairs[0][0]), device=device)
        x = objective.q_sample(init.to(device), t0, x)
    if mask is not None:
        mask = mask.to(device=device, dtype=torch.bool)
        keep = broadcast_like(mask, x)
        known = known.to(device)

    def model_t(t: float) -> torch.Tensor:  # the t the model sees: [B], or [B, T] per frame
        tt = torch.full((batch,), float(t), device=device)
        if frame_timesteps and mask is not None:
            tt = torch.where(mask, tt[:, None], objective.clean_time())
        return tt

    def velocity_fn(x_in, t):  # Heun's second evaluation
        if mask is not None:
            x_in = torch.where(keep, x_in, known)
        return fn(x_in, model_t(t))

    trajectory = []
    for t, t_next in tqdm(pairs, desc=f"{info.name} x{len(pairs)}", disable=not progress, leave=False):
        if mask is not None:
            x = torch.where(keep, x, known)  # condition frames stay clean
        out = fn(x, model_t(t))
        if info.name == "ddpm":
            x, _ = ddpm_step(objective, out, t, t_next, x, generator=generator, clip_x0=clip_x0)
        elif info.name == "ddim":
            x, _ = ddim_step(objective, out, t, t_next, x, eta=eta, generator=generator, clip_x0=clip_x0)
        elif info.name == "euler":
            x = euler_step(out, t, t_next, x)
        else:
            x = heun_step(velocity_fn, out, t, t_next, x)
        if return_trajectory:
            trajectory.append(x)
    if mask is not None:
        x = torch.where(keep, x, known)
    return (x, trajectory) if return_trajectory else x


def count_evals(sampler: str, steps: int) -> int:
    """Model evaluations a ``steps``-step run costs (before the 2x of batched guidance)."""
    info = get_sampler(sampler)
    return steps if info.evals_per_step == 1 else 2 * steps - 1
