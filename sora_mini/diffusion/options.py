"""The options of ``sample``, in four frozen groups, each checked when it is built.

- ``GaussianOptions(spacing, eta, clip_x0)``: which integer timesteps a DDPM / DDIM run visits,
  DDIM's noise level and the clip of the predicted x0.
- ``FlowOptions(shift, mu, grid)``: the times a flow ODE sampler visits (Euler, Heun).
- ``FrameCondition(known, mask, frame_timesteps)``: clean condition frames kept at every step
  (Open-Sora's mask: image-to-video, extension, prediction).
- ``SDEdit(init, strength)``: start from a noised guide instead of pure noise (Meng et al. 2021).

The first two also say which ``(t, t_next)`` pairs the loop walks (``pairs``). Shapes: ``known`` and
``init`` [B, ...] like the sample; ``mask`` [B, T] for a video [B, C, T, H, W] or [B, N] for
tokens [B, N, D], True = generate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from itertools import pairwise

import torch

from .flow import SAMPLING_GRIDS
from .schedules import broadcast_like

SPACINGS = ("trailing", "leading", "linspace")


def _number(name: str, value, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number{' or None' if allow_none else ''}, got {value!r}")


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


@dataclass(frozen=True)
class GaussianOptions:
    """DDPM / DDIM: ``spacing`` of the visited timesteps (see ``ddpm_timesteps``), DDIM's ``eta``
    (0 = deterministic, 1 = DDPM's variance; the ``ddpm`` sampler takes none) and ``clip_x0``
    (clip the predicted x0 to [-c, c] before each step; None = no clip)."""

    spacing: str = "trailing"
    eta: float = 0.0
    clip_x0: float | None = None

    def __post_init__(self):
        if self.spacing not in SPACINGS:
            raise ValueError(f"unknown timestep spacing {self.spacing!r}; allowed: {', '.join(SPACINGS)}")
        _number("eta", self.eta)
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0 (0 = deterministic DDIM, 1 = DDPM-like), got {self.eta}")
        _number("clip_x0", self.clip_x0, allow_none=True)
        if self.clip_x0 is not None and self.clip_x0 <= 0:
            raise ValueError(f"clip_x0 must be > 0 (e.g. 1.0 for data in [-1, 1]) or None, got {self.clip_x0}")

    def pairs(self, objective, steps: int) -> list[tuple[int, int]]:
        """(t, t_prev) per step, descending; the last t_prev is -1 (clean data)."""
        ts = ddpm_timesteps(objective.num_train_timesteps, steps, self.spacing)
        return list(zip(ts, ts[1:] + [-1]))


@dataclass(frozen=True)
class FlowOptions:
    """Flow samplers: ``shift`` (alpha; None = the objective's own), or ``mu`` (dynamic
    shifting, alpha = e^mu, as diffusers / Flux), the ``grid`` of times ("uniform" or
    "diffusers"; see ``FlowMatching.sampling_times``), and ``eta``, the noise the ancestral sampler
    mixes in at each step (Euler and Heun ignore it)."""

    shift: float | None = None
    mu: float | None = None
    grid: str = "uniform"
    eta: float = 1.0  # the ancestral sampler's noise: 1 = the posterior's, 0 = none (Euler)

    def __post_init__(self):
        _number("shift", self.shift, allow_none=True)
        _number("mu", self.mu, allow_none=True)
        _number("eta", self.eta)
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be in [0, 1] (the ancestral sampler's noise: 0 = Euler), got {self.eta}")
        if self.shift is not None and self.shift <= 0:
            raise ValueError(f"shift must be > 0 (1 = no shift), got {self.shift}")
        if self.shift is not None and self.mu is not None:
            raise ValueError(f"give shift ({self.shift}) or mu ({self.mu}), not both: mu sets the shift "
                             f"to e^mu (dynamic shifting)")
        if self.grid not in SAMPLING_GRIDS:
            raise ValueError(f"unknown sampling grid {self.grid!r}; allowed: {', '.join(SAMPLING_GRIDS)}")

    def pairs(self, objective, steps: int) -> list[tuple[float, float]]:
        """(t, t_next) per step, from 1 (noise) down to 0 (data)."""
        times = objective.sampling_times(steps, shift=self.shift, mu=self.mu, grid=self.grid).tolist()
        return list(pairwise(times))


@dataclass(frozen=True, eq=False)
class FrameCondition:
    """Clean condition frames: ``known`` [B, ...] (read where ``mask`` is False) and ``mask`` [B, T]
    or [B, N] bool (True = generate). With ``frame_timesteps`` the model gets t [B, T] with the
    clean time at the condition frames, else one t [B]."""

    known: torch.Tensor
    mask: torch.Tensor
    frame_timesteps: bool = False

    def __post_init__(self):
        if not isinstance(self.known, torch.Tensor) or not isinstance(self.mask, torch.Tensor):
            raise TypeError("FrameCondition(known, mask) takes two tensors: the clean values [B, ...] and "
                            "the mask [B, T] bool (True = generate)")
        if self.mask.dtype != torch.bool:
            raise ValueError(f"mask must be bool (True = generate, False = a clean condition), got "
                             f"{self.mask.dtype}; use mask.bool()")
        if self.mask.ndim != 2 or self.mask.shape[0] != self.known.shape[0]:
            raise ValueError(f"mask must be [B, T] (or [B, N] for tokens) with B = {self.known.shape[0]} "
                             f"(known's batch), got {list(self.mask.shape)}")
        try:
            torch.broadcast_shapes(broadcast_like(self.mask, self.known).shape, self.known.shape)
        except (RuntimeError, ValueError) as e:
            raise ValueError(f"mask {list(self.mask.shape)} does not fit known {list(self.known.shape)}: use "
                             "[B, T] for a video [B, C, T, H, W] or [B, N] for tokens [B, N, D]") from e

    def to(self, device) -> FrameCondition:
        return replace(self, known=self.known.to(device), mask=self.mask.to(device))

    def clean(self, x: torch.Tensor) -> torch.Tensor:
        """x with the condition frames replaced by the known clean values."""
        return torch.where(broadcast_like(self.mask, x), x, self.known)

    def model_time(self, t: torch.Tensor, clean_time: float) -> torch.Tensor:
        """The t the model sees: [B] as it is, or [B, T] with ``clean_time`` at the condition frames."""
        return torch.where(self.mask, t[:, None], clean_time) if self.frame_timesteps else t


@dataclass(frozen=True, eq=False)
class SDEdit:
    """Start from ``init`` [B, ...] noised to the step that ``strength`` in (0, 1] names (1 = pure
    noise, small = stay near the guide), then denoise from there (diffusers' img2img)."""

    init: torch.Tensor
    strength: float

    def __post_init__(self):
        if not isinstance(self.init, torch.Tensor):
            raise TypeError(f"SDEdit init must be a tensor [B, ...] like the sample, got {type(self.init).__name__}")
        _number("strength", self.strength)
        if not 0.0 < self.strength <= 1.0:
            raise ValueError(f"strength must be in (0, 1] (1 = from pure noise), got {self.strength}")

    def skip(self, pairs: list) -> list:
        """The steps left after skipping the first (1 - strength) share."""
        return pairs[len(pairs) - int(len(pairs) * self.strength):]
