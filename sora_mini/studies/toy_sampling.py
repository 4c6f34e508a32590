"""Measuring samplers on notebook 03's toys, with their spread: chamfer over sampling seeds, Wilson
intervals for rates (adherence, on-target share), and how straight a sampling path is.

Shapes: points [N, 2]; a sampling path [S + 1, N, D] (the start x_T, then x after each of S steps).
Wilson 1927 ("Probable inference, the law of succession, and statistical inference") for the
interval of a binomial rate; it stays inside [0, 1] and is honest at n = 16, unlike p +- 2 sqrt(pq/n).
"""

from __future__ import annotations

import numpy as np
import torch

from sora_mini.diffusion import sample
from sora_mini.evaluate.intervals import (
    bars_separate,
    format_rate,
    intervals_overlap,
    rate_interval,
    wilson_interval,
)
from sora_mini.studies.toy_diffusion import chamfer

__all__ = ["bars_separate", "chamfer_over_seeds", "format_rate", "intervals_overlap", "path_straightness", "rate_interval", "sample_points",
           "sampling_path", "wilson_interval"]


def sample_points(model, objective, sampler: str, steps: int, *, n: int = 1000, seed: int = 0,
                  device="cpu", **kw) -> torch.Tensor:
    """``n`` 2D samples [n, 2] (on the CPU) from noise drawn with ``seed``; ``model`` in eval mode."""
    return sample(model, objective, (n, 2), sampler=sampler, steps=steps, device=device,
                  generator=torch.Generator().manual_seed(seed), progress=False, **kw).cpu()


def chamfer_over_seeds(model, objective, sampler: str, steps: int, ref: torch.Tensor, *, seeds,
                       n: int = 1000, device="cpu"):
    """Chamfer to ``ref`` for each sampling seed: (the first seed's points [n, 2], chamfers [len(seeds)])."""
    clouds = [sample_points(model, objective, sampler, steps, n=n, seed=s, device=device) for s in seeds]
    return clouds[0], np.array([chamfer(x, ref) for x in clouds])


def sampling_path(model, objective, sampler: str, steps: int, x_T: torch.Tensor, device="cpu") -> torch.Tensor:
    """x_T and x after every step, from the same start: [steps + 1, N, D] on the CPU."""
    _, traj = sample(model, objective, tuple(x_T.shape), sampler=sampler, steps=steps, noise=x_T,
                     device=device, progress=False, return_trajectory=True)
    return torch.stack([x_T.cpu()] + [p.cpu() for p in traj])


def path_straightness(path: torch.Tensor) -> torch.Tensor:
    """Path length over the straight chord from start to end, per point: 1 = a straight line.

    Shapes: [S + 1, N, D] -> [N].
    """
    length = (path[1:] - path[:-1]).norm(dim=-1).sum(0)  # [N]
    chord = (path[-1] - path[0]).norm(dim=-1)  # [N]
    return length / chord.clamp(min=1e-12)
