"""An exponential moving average of a model's weights, with the warmup of timm and diffusers."""

from __future__ import annotations

import torch
from torch import nn

from sora_mini.train.device import unwrap


class EMA:
    """Exponential moving average of a model's floating-point parameters and buffers.

    ``shadow <- d_n * shadow + (1 - d_n) * weights`` at update ``n`` (0-based), evaluate or save
    with :meth:`copy_to`. With ``warmup`` (the default) ``d_n = min(decay, (1 + n) / (10 + n))``, as
    timm's and diffusers' EMA: early updates follow the weights, so the shadow forgets the initial
    weights within a few hundred steps. Without it ``d_n = decay`` and after ``N`` updates the shadow
    still holds ``decay ** N`` of the initial weights (44 % at decay 0.999 after 816 steps: samples
    from such an EMA are noise). DiT samples from an EMA of decay 0.9999.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = decay, warmup
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in unwrap(model).state_dict().items()}

    def current_decay(self) -> float:
        """The decay the next :meth:`update` uses."""
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        decay = self.current_decay()
        for k, v in unwrap(model).state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v.detach(), 1.0 - decay)
            else:
                self.shadow[k].copy_(v)
        self.num_updates += 1

    def copy_to(self, model: nn.Module) -> None:
        unwrap(model).load_state_dict(self.shadow)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], num_updates: int | None = None) -> None:
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
        if num_updates is not None:
            self.num_updates = int(num_updates)
