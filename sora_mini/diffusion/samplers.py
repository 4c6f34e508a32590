"""Samplers: DDPM ancestral and DDIM for Gaussian diffusion, Euler, Heun and ancestral for flow matching.

Shapes: ``x_t`` and model outputs [B, ...]; timesteps are Python numbers (one per step) or [B]
tensors. Each ``*_step`` is one update, testable alone against diffusers; the registry ``SAMPLERS``
holds each sampler's step function, and ``sample`` runs the loop with classifier-free guidance,
clean condition frames (image-to-video, extension) and SDEdit; its options come in the frozen
groups of ``options.py``.
Ho et al. 2020 Algorithm 2; Song et al. 2021 (DDIM, arXiv 2010.02502) Eq. 12; Karras et al. 2022
(EDM, arXiv 2206.00364) Algorithm 1 for Heun.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .ddpm import GaussianDiffusion
from .guidance import check_guidance_scale, guided
from .objective import DiffusionObjective, ModelFn, randn_like_gen
from .options import SPACINGS, FlowOptions, FrameCondition, GaussianOptions, SDEdit, ddpm_timesteps
from .schedules import broadcast_like

__all__ = ["SAMPLERS", "SPACINGS", "SamplerInfo", "SamplerRun", "count_evals", "ddim_step", "ddpm_step",
           "ddpm_timesteps", "euler_step", "flow_ancestral_step", "get_sampler", "heun_step", "sample"]


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


def flow_ancestral_step(v: torch.Tensor, t, t_next, x_t: torch.Tensor, *, eta: float = 1.0,
                        noise: torch.Tensor | None = None, generator: torch.Generator | None = None
                        ) -> torch.Tensor:
    """DDIM with ``eta`` (Song et al. 2021, Eq. 12) on the flow's straight path x_t = (1 - t) x0 + t eps.

    Shapes: [B, ...] -> [B, ...]. The velocity gives both ends, x0 = x_t - t v and eps = x_t + (1 - t) v;
    the step to s = t_next keeps x0 and mixes fresh noise z into the noise part:
    x_s = (1 - s) x0 + sqrt(s^2 - c^2) eps + c z, c = eta s sqrt(1 - r^2), r = (1 - t) s / ((1 - s) t).
    eta = 1 draws x_s from the Gaussian posterior q(x_s | x_t, x0) (DDPM's ancestral step for this
    path: alpha = 1 - t, sigma = t); eta = 0 is exactly the Euler step; the step to s = 0 adds no noise.
    """
    if not 0.0 <= eta <= 1.0:
        raise ValueError(f"eta must be in [0, 1] (0 = the Euler step, 1 = the posterior's full noise), got {eta}")
    t_, s_ = (broadcast_like(torch.as_tensor(u, dtype=x_t.dtype, device=x_t.device), x_t) for u in (t, t_next))
    x0, eps = x_t - t_ * v, x_t + (1 - t_) * v
    r = ((1 - t_) * s_ / ((1 - s_) * t_)).clamp(0, 1)
    c = eta * s_ * (1 - r * r).sqrt()
    if eta > 0 and noise is None:
        noise = randn_like_gen(x_t, generator)
    out = (1 - s_) * x0 + (s_ * s_ - c * c).clamp(min=0).sqrt() * eps
    return out if eta == 0 else out + c * noise


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
# The registry: each sampler's step function
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplerRun:
    """What a step function reads: the objective, ``model(x, t) -> output`` (guided, condition
    frames kept clean, t a Python number), the run's options and its generator."""

    objective: DiffusionObjective
    model: Callable[[torch.Tensor, float], torch.Tensor]
    options: GaussianOptions | FlowOptions
    generator: torch.Generator | None


def _ddpm(run: SamplerRun, x, t, t_prev):
    if run.options.eta != 0:
        raise ValueError(f"eta={run.options.eta} is DDIM's noise level; the ddpm sampler has its own "
                         "(eta=1): use sampler='ddim' or leave eta at 0")
    return ddpm_step(run.objective, run.model(x, t), t, t_prev, x, generator=run.generator,
                     clip_x0=run.options.clip_x0)[0]


def _ddim(run: SamplerRun, x, t, t_prev):
    return ddim_step(run.objective, run.model(x, t), t, t_prev, x, eta=run.options.eta,
                     generator=run.generator, clip_x0=run.options.clip_x0)[0]


def _euler(run: SamplerRun, x, t, t_next):
    return euler_step(run.model(x, t), t, t_next, x)


def _heun(run: SamplerRun, x, t, t_next):
    return heun_step(run.model, run.model(x, t), t, t_next, x)


def _flow_ancestral(run: SamplerRun, x, t, t_next):
    return flow_ancestral_step(run.model(x, t), t, t_next, x, eta=run.options.eta, generator=run.generator)


@dataclass(frozen=True)
class SamplerInfo:
    """A registered sampler: the objective ``kind`` it needs, its ``options`` class, model
    evaluations per step, and ``step(run, x, t, t_next) -> x`` (one update)."""

    name: str
    kind: str  # the objective it needs: "gaussian" or "flow"
    options: type  # GaussianOptions or FlowOptions
    evals_per_step: int  # model evaluations per step (Heun: 2, except the last step)
    description: str
    step: Callable[[SamplerRun, torch.Tensor, float, float], torch.Tensor]


SAMPLERS: dict[str, SamplerInfo] = {
    "ddpm": SamplerInfo("ddpm", "gaussian", GaussianOptions, 1, "DDPM ancestral sampling (stochastic), "
                        "Ho et al. 2020", _ddpm),
    "ddim": SamplerInfo("ddim", "gaussian", GaussianOptions, 1, "DDIM, deterministic at eta=0, Song et al. "
                        "2021", _ddim),
    "euler": SamplerInfo("euler", "flow", FlowOptions, 1, "Euler ODE steps on the flow velocity", _euler),
    "heun": SamplerInfo("heun", "flow", FlowOptions, 2, "Heun's 2nd-order ODE steps, Karras et al. 2022", _heun),
    "ancestral": SamplerInfo("ancestral", "flow", FlowOptions, 1, "ancestral flow steps: x0 and the noise read "
                             "from the velocity, fresh noise mixed in (DDIM's eta on the flow path; "
                             "FlowOptions.eta, 1 = the posterior's)", _flow_ancestral),
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


def count_evals(sampler: str, steps: int) -> int:
    """Model evaluations a ``steps``-step run costs (before the 2x of batched guidance)."""
    info = get_sampler(sampler)
    return steps if info.evals_per_step == 1 else 2 * steps - 1


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------
def _check_like(name: str, value: torch.Tensor, shape) -> None:
    if tuple(value.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {list(value.shape)} but the sample is {list(shape)}; they must match")


@torch.no_grad()
def sample(model_fn: ModelFn, objective: DiffusionObjective, shape, *, sampler: str | None = None,
           steps: int = 50, guidance_scale: float = 1.0, cond: dict | None = None,
           uncond: dict | None = None, guidance_interval: tuple[float, float] | None = None,
           generator: torch.Generator | None = None, device=None,
           noise: torch.Tensor | None = None, options: GaussianOptions | FlowOptions | None = None,
           frames: FrameCondition | None = None, sdedit: SDEdit | None = None, progress: bool = True,
           return_trajectory: bool = False):
    """Generate a batch: noise -> ``steps`` sampler updates -> data. Shapes: ``shape`` = [B, ...].

    ``model_fn(x_t, t, **cond)`` follows the interface in ``objective.py``: pass a backbone itself
    (it declares ``timestep_range`` and the objective converts t into it) or a plain function of
    the objective's t. ``sampler`` defaults to the objective's (DDIM / Euler); ``options`` is the
    sampler's ``GaussianOptions`` or ``FlowOptions`` (default: their defaults); ``frames`` keeps
    clean condition frames at every step; ``sdedit`` starts from a noised guide; ``noise`` is the
    starting x_T (default: drawn from ``generator``); ``guidance_interval`` (lo, hi) guides only
    while lo < t <= hi (``guidance.guided``).
    Returns x [B, ...], or (x, [x after every step]) with ``return_trajectory``.
    """
    info = get_sampler(sampler or objective.default_sampler, objective)
    options = info.options() if options is None else options
    if not isinstance(options, info.options):
        raise TypeError(f"sampler {info.name!r} takes options={info.options.__name__}(...), got "
                        f"{type(options).__name__}")
    if frames is not None and not isinstance(frames, FrameCondition):
        raise TypeError(f"frames= takes a FrameCondition(known, mask), got {type(frames).__name__}")
    if sdedit is not None and not isinstance(sdedit, SDEdit):
        raise TypeError(f"sdedit= takes an SDEdit(init, strength), got {type(sdedit).__name__}")
    check_guidance_scale(guidance_scale)
    for name, value in (("noise", noise), ("frames.known", frames and frames.known),
                        ("sdedit.init", sdedit and sdedit.init)):
        if value is not None:
            _check_like(name, value, shape)
    if device is None:  # where the given tensors are, else the CPU
        given = [v for v in (noise, sdedit and sdedit.init, frames and frames.known) if v is not None]
        device = given[0].device if given else torch.device("cpu")
    device = torch.device(device)
    fn = guided(objective.with_model_time(model_fn), guidance_scale, cond, uncond, guidance_interval)
    batch = shape[0]

    pairs = options.pairs(objective, steps)
    x = noise.to(device) if noise is not None else torch.randn(
        tuple(shape), generator=generator, device=generator.device if generator else device).to(device)
    if sdedit is not None:  # skip the first steps, start from the noised guide
        init = sdedit.init.to(device)
        pairs = sdedit.skip(pairs)
        if not pairs:
            return (init, [init]) if return_trajectory else init
        x = objective.q_sample(init, torch.full((batch,), float(pairs[0][0]), device=device), x)
    frames = frames.to(device) if frames is not None else None
    clean_time = objective.clean_time()

    def model(x_in: torch.Tensor, t: float) -> torch.Tensor:  # one evaluation at time t
        tt = torch.full((batch,), float(t), device=device)
        if frames is None:
            return fn(x_in, tt)
        return fn(frames.clean(x_in), frames.model_time(tt, clean_time))

    run = SamplerRun(objective, model, options, generator)
    trajectory = []
    for t, t_next in tqdm(pairs, desc=f"{info.name} x{len(pairs)}", disable=not progress, leave=False):
        if frames is not None:
            x = frames.clean(x)  # condition frames stay clean
        x = info.step(run, x, t, t_next)
        if return_trajectory:
            trajectory.append(x)
    if frames is not None:
        x = frames.clean(x)
    return (x, trajectory) if return_trajectory else x
