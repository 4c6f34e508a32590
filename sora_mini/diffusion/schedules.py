"""DDPM noise schedules: the betas and their cumulative products, held as registered buffers.

Shapes: every buffer is ``[num_train_timesteps]`` (float32); ``coefficient(name, t, x)`` gathers one
per example (``t`` [B]) or per frame/token (``t`` [B, T]) and broadcasts it against ``x``.
Ho et al. 2020 (arXiv 2006.11239) for ``linear``; Nichol & Dhariwal 2021 (arXiv 2102.09672) for
``cosine`` (diffusers' ``squaredcos_cap_v2``); Rombach et al. 2022 for ``scaled_linear``.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

BETA_SCHEDULES = ("linear", "scaled_linear", "cosine")


def make_betas(name: str, num_timesteps: int = 1000, beta_start: float = 1e-4,
               beta_end: float = 0.02) -> torch.Tensor:
    """The betas of a named schedule, as float32 and with the arithmetic diffusers uses (bit for bit).

    Shapes: -> ``[num_timesteps]``.
    """
    if name not in BETA_SCHEDULES:
        raise ValueError(f"unknown beta schedule {name!r}; allowed: {', '.join(BETA_SCHEDULES)}")
    if num_timesteps < 2:
        raise ValueError(f"num_timesteps must be at least 2, got {num_timesteps}")
    # A float32 linspace differs from a rounded float64 one by an ulp here and there; through the
    # cumulative product that becomes 2e-7 relative, and dividing by sqrt(alpha_bar) ~ 0.006 at
    # t=999 amplifies it past 1e-6. So linear schedules are built in float32, like diffusers.
    if name == "linear":  # Ho et al. 2020, Sec. 4: beta from 1e-4 to 0.02 over T=1000
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float32)
    if name == "scaled_linear":  # Stable Diffusion: linear in sqrt(beta)
        return torch.linspace(beta_start**0.5, beta_end**0.5, num_timesteps, dtype=torch.float32) ** 2

    # cosine, Nichol & Dhariwal 2021, Eq. 17: alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi/2), s = 0.008
    def alpha_bar(u: float) -> float:
        return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / num_timesteps) / alpha_bar(i / num_timesteps), 0.999)
             for i in range(num_timesteps)]  # float64 math; beta capped at 0.999 (last step finite)
    return torch.tensor(betas, dtype=torch.float32)


def broadcast_like(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Give a per-example or per-frame value the singleton axes it needs to broadcast against ``x``.

    Shapes: ``[B]`` -> ``[B, 1, ..., 1]``; ``[B, T]`` with a video ``x`` ``[B, C, T, H, W]`` ->
    ``[B, 1, T, 1, 1]`` (per frame); ``[B, N]`` with tokens ``x`` ``[B, N, D]`` -> ``[B, N, 1]``
    (per token); a tensor that already has ``x.ndim`` axes is returned as it is.
    """
    if v.ndim == 0:
        return v
    if v.ndim == x.ndim:
        return v
    if v.ndim == 1:
        return v.reshape(v.shape[0], *([1] * (x.ndim - 1)))
    if v.ndim == 2 and x.ndim == 5:  # per-frame values for a [B, C, T, H, W] video
        return rearrange(v, "b t -> b 1 t 1 1")
    if v.ndim < x.ndim:  # per-token values for [B, N, ...] tokens
        return v.reshape(*v.shape, *([1] * (x.ndim - v.ndim)))
    raise ValueError(f"cannot broadcast a value of shape {tuple(v.shape)} against x of shape "
                     f"{tuple(x.shape)}; use [B], [B, T] (video frames) or [B, N] (tokens)")


class NoiseSchedule(nn.Module):
    """The variance schedule beta_1..beta_T and what DDPM derives from it, as buffers.

    Shapes: buffers ``[T]``; ``coefficient`` -> broadcastable to ``x``.
    Indices are the integer timesteps 0..T-1 (0 = almost clean, T-1 = almost pure noise), like
    diffusers; Ho et al. number them 1..T.
    """

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear",
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        self.num_train_timesteps = int(num_train_timesteps)
        self.beta_schedule = beta_schedule
        betas = make_betas(beta_schedule, self.num_train_timesteps, beta_start, beta_end)
        alphas = 1.0 - betas
        # float32 cumprod of float32 betas, the arithmetic diffusers uses, so parity holds to 1e-6
        alphas_cumprod = torch.cumprod(alphas, dim=0)
        # register_buffer: the tensors move with .to(device) and are saved, but are not trained
        self.register_buffer("betas", betas, persistent=False)
        self.register_buffer("alphas", alphas, persistent=False)
        self.register_buffer("alphas_cumprod", alphas_cumprod, persistent=False)
        self.register_buffer("sqrt_alphas_cumprod", alphas_cumprod.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1 - alphas_cumprod).sqrt(),
                             persistent=False)

    def extra_repr(self) -> str:
        return f"{self.beta_schedule}, T={self.num_train_timesteps}"

    # -- timesteps -------------------------------------------------------------------------------
    def check_timesteps(self, t: torch.Tensor | float) -> torch.Tensor:
        """Integer timesteps as a long tensor, or a ValueError naming the allowed range."""
        t = torch.as_tensor(t)
        T = self.num_train_timesteps
        if t.numel() and (t.min() < 0 or t.max() > T - 1):
            raise ValueError(f"timestep out of the schedule: got values in [{t.min().item()}, "
                             f"{t.max().item()}]; allowed: integers 0..{T - 1} "
                             f"(num_train_timesteps={T})")
        if t.is_floating_point() and t.numel() and not torch.equal(t, t.round()):
            raise ValueError(f"DDPM timesteps are integers 0..{T - 1}; got non-integer values "
                             f"such as {t[t != t.round()].flatten()[0].item()}")
        return t.long()

    def alpha_bar(self, t: torch.Tensor | int) -> torch.Tensor:
        """alpha_bar_t = prod_{s<=t} (1 - beta_s); ``t = -1`` means 'before the first step' (1.0).

        Shapes: ``t`` any -> same shape as ``t``.
        """
        t = torch.as_tensor(t, device=self.alphas_cumprod.device)
        if t.numel() and t.min() < -1:
            raise ValueError(f"timestep {t.min().item()} is out of the schedule; allowed: -1 "
                             f"(clean) and 0..{self.num_train_timesteps - 1}")
        idx = self.check_timesteps(t.clamp(min=0))
        one = torch.ones((), dtype=self.alphas_cumprod.dtype, device=self.alphas_cumprod.device)
        return torch.where(t.to(idx.device) >= 0, self.alphas_cumprod[idx], one)

    def coefficient(self, name: str, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        """The buffer ``name`` at timesteps ``t``, broadcast against ``x`` (and in x's dtype)."""
        idx = self.check_timesteps(t).to(self.alphas_cumprod.device)
        values = getattr(self, name)[idx].to(dtype=x.dtype, device=x.device)
        return broadcast_like(values, x)

    def snr(self, t: torch.Tensor | int) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) (Kingma et al. 2021)."""
        a = self.alpha_bar(t)
        return a / (1 - a)
