"""Rectified flow / flow matching: a straight line from data (t=0) to noise (t=1), learn its velocity.

Shapes: ``x0``, ``noise``, ``x_t`` [B, ...]; ``t`` [B] (or [B, T] per frame) floats in [0, 1].
Liu et al. 2022 (rectified flow, arXiv 2209.03003); Lipman et al. 2022 (flow matching, arXiv
2210.02747); Esser et al. 2024 (SD3, arXiv 2403.03206: logit-normal t, resolution shift Sec. 5.3.2).

Sign convention: SD3 / diffusers / Open-Sora 2.0 -- ``x_t = (1-t) x0 + t noise`` and the velocity
target ``v = dx_t/dt = noise - x0``; the sampler integrates from t=1 to t=0, so its steps are
negative: ``x <- x + (t_next - t) v``. Open-Sora 1.2 uses the opposite sign (target ``x0 - noise``,
time 0..1000 with 1000 = noise, positive steps ``x <- x + v dt``): the same ODE, read backwards.
"""

from __future__ import annotations

import math

import torch

from .objective import DiffusionObjective
from .schedules import broadcast_like

TIMESTEP_SAMPLING = ("logit_normal", "uniform", "mode")
SAMPLING_GRIDS = ("uniform", "diffusers")


def timestep_shift(t, alpha: float):
    """t' = alpha t / (1 + (alpha - 1) t): alpha > 1 spends more time near noise (SD3, Sec. 5.3.2).

    Shapes: any -> same; ``alpha`` a number or a tensor broadcast against ``t`` (one per example).
    ``alpha = sqrt(m / n)`` moves a schedule tuned for n pixels/tokens to m.
    """
    if bool((torch.as_tensor(alpha) <= 0).any()):
        raise ValueError(f"shift alpha must be > 0, got {alpha}")
    return alpha * t / (1 + (alpha - 1) * t)


def resolution_shift(num_tokens: int, num_frames: int = 1, *, base_tokens: int = 256,
                     max_tokens: int = 4096, base_shift: float = 1.0, max_shift: float = 3.0) -> float:
    """The shift alpha for a latent of ``num_tokens`` tokens per frame and ``num_frames`` latent frames.

    Open-Sora 2.0: alpha is linear in the tokens per frame (``base_shift`` at ``base_tokens``,
    ``max_shift`` at ``max_tokens``), times sqrt(num_frames): a bigger or longer video has more
    redundant pixels, so the same noise level destroys less of it and sampling must start noisier.
    (Open-Sora 1.2 used sqrt(H W / 512^2) * sqrt(frames); SD3 uses sqrt(m / n).)
    """
    if num_tokens < 1 or num_frames < 1:
        raise ValueError(f"num_tokens and num_frames must be >= 1, got {num_tokens}, {num_frames}")
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    alpha = base_shift + slope * (num_tokens - base_tokens)
    return max(alpha, 1e-3) * math.sqrt(num_frames)


def shift_mu(num_tokens: int, *, base_tokens: int = 256, max_tokens: int = 4096,
             base_shift: float = 0.5, max_shift: float = 1.15) -> float:
    """diffusers' / Flux's dynamic shift ``mu`` (a shift of alpha = e^mu), linear in the token count."""
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return base_shift + slope * (num_tokens - base_tokens)


class FlowMatching(DiffusionObjective):
    """Rectified-flow training: x_t = (1-t) x0 + t noise, target v = noise - x0 (SD3 sign).

    Shapes: see the module docstring. ``timestep_scale = 1000``: a DiT embedder sees t * 1000.
    """

    kind = "flow"
    timestep_scale = 1000.0
    default_sampler = "euler"

    def __init__(self, timestep_sampling: str = "logit_normal", logit_mean: float = 0.0,
                 logit_std: float = 1.0, mode_scale: float = 1.29, shift: float = 1.0):
        super().__init__()
        if timestep_sampling not in TIMESTEP_SAMPLING:
            raise ValueError(f"unknown timestep sampling {timestep_sampling!r}; allowed: "
                             f"{', '.join(TIMESTEP_SAMPLING)}")
        if shift <= 0:
            raise ValueError(f"shift must be > 0 (1 = no shift), got {shift}")
        self.timestep_sampling = timestep_sampling
        self.logit_mean, self.logit_std, self.mode_scale = logit_mean, logit_std, mode_scale
        self.shift = float(shift)

    def extra_repr(self) -> str:
        return f"timestep_sampling={self.timestep_sampling}, shift={self.shift}"

    # -- timesteps -------------------------------------------------------------------------------
    def check_timesteps(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.numel() and (t.min() < 0 or t.max() > 1 or torch.isnan(t).any()):
            raise ValueError(f"flow-matching time out of range: got values in [{t.min().item()}, "
                             f"{t.max().item()}]; allowed: floats in [0, 1] (0 = data, 1 = noise). "
                             f"A 0..1000 timestep? divide it by 1000")
        return t

    def sample_timesteps(self, batch_size: int, *, device=None,
                         generator: torch.Generator | None = None,
                         shift: float | None = None) -> torch.Tensor:
        """Training times [B]: logit-normal (SD3's best, rf/lognorm(0, 1)), uniform or 'mode', then shifted."""
        gen_device = generator.device if generator is not None else device
        if self.timestep_sampling == "logit_normal":  # u ~ N(m, s), t = sigmoid(u)
            u = torch.randn(batch_size, generator=generator, device=gen_device)
            t = torch.sigmoid(self.logit_mean + self.logit_std * u)
        else:
            u = torch.rand(batch_size, generator=generator, device=gen_device)
            if self.timestep_sampling == "uniform":
                t = u
            else:  # SD3 Eq. 20, "mode sampling with heavy tails"
                t = 1 - u - self.mode_scale * (torch.cos(math.pi * u / 2) ** 2 - 1 + u)
        t = timestep_shift(t, self.shift if shift is None else shift)
        return t.clamp(0.0, 1.0).to(device=device, dtype=torch.float32)

    def sampling_times(self, steps: int, *, shift: float | None = None, mu: float | None = None,
                       grid: str = "uniform") -> torch.Tensor:
        """The times an ODE sampler visits, from 1 (noise) down to 0 (data). Shapes: -> [steps + 1].

        ``grid="uniform"``: linspace(1, 0, steps + 1), then shifted (Open-Sora 2.0, Flux).
        ``grid="diffusers"``: FlowMatchEulerDiscreteScheduler.set_timesteps -- linspace from 1 to the
        smallest training sigma (itself shifted once already), shifted, then a final 0 appended.
        ``mu`` (dynamic shifting) means alpha = e^mu and replaces ``shift``.
        """
        if grid not in SAMPLING_GRIDS:
            raise ValueError(f"unknown sampling grid {grid!r}; allowed: {', '.join(SAMPLING_GRIDS)}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        alpha = math.exp(mu) if mu is not None else (self.shift if shift is None else shift)
        if grid == "uniform":
            t = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
            return timestep_shift(t, alpha).float()
        T = 1000  # diffusers' num_train_timesteps: training sigmas are k/1000, k = 1..1000
        t_min = 1.0 / T if mu is not None else timestep_shift(1.0 / T, alpha)
        t = torch.linspace(1.0, t_min, steps, dtype=torch.float64)
        t = timestep_shift(t, alpha)
        return torch.cat([t, torch.zeros(1, dtype=torch.float64)]).float()

    # -- forward process --------------------------------------------------------------------------
    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = (1 - t) x0 + t noise: the straight path (diffusers' ``scale_noise``)."""
        t = broadcast_like(self.check_timesteps(torch.as_tensor(t, dtype=x0.dtype, device=x0.device)), x0)
        return (1 - t) * x0 + t * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | None = None):
        """The velocity dx_t/dt = noise - x0 (constant along each straight path)."""
        return noise - x0

    # -- conversions ------------------------------------------------------------------------------
    def predict_x0(self, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
        """x0_hat = x_t - t v (walk the rest of the straight line back to t=0)."""
        return x_t - broadcast_like(torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device), x_t) * v

    def predict_noise(self, x_t: torch.Tensor, t, v: torch.Tensor) -> torch.Tensor:
        """noise_hat = x_t + (1 - t) v (walk forward to t=1)."""
        t = broadcast_like(torch.as_tensor(t, dtype=x_t.dtype, device=x_t.device), x_t)
        return x_t + (1 - t) * v
