"""Token dropping: keep a random subset of each example's tokens, with their positions.

Shapes: tokens [n, D], coords [n, 3] -> kept tokens [k, D], coords [k, 3], keep [k] (sorted indices
into the full token order), k = max(1, floor(n (1 - rate))).
NaViT (Dehghani et al. 2023, arXiv 2307.06304) "continuous token dropping": a rate drawn per
example, which may depend on the example's resolution. The loss covers only the kept tokens:
in packed form that is ``~padding``; per example in the full grid it is ``restore_tokens``'s mask.
"""

from __future__ import annotations

import math

import torch


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"token drop rate {rate} must be in [0, 1): it is the share of tokens removed")
    return rate


def num_kept(n: int, rate: float) -> int:
    """Tokens kept out of ``n`` at drop ``rate``: at least one."""
    return max(1, math.floor(n * (1.0 - _check_rate(rate)) + 1e-9))


def drop_tokens(tokens: torch.Tensor, coords: torch.Tensor, rate: float,
                generator: torch.Generator | None = None):
    """Keep a uniformly random subset of the tokens, in their original order, with their positions.

    Shapes: tokens [n, D], coords [n, 3] -> (tokens [k, D], coords [k, 3], keep [k] long).
    """
    n = tokens.shape[0]
    if coords.shape[0] != n:
        raise ValueError(f"{n} tokens but {coords.shape[0]} coordinates: they must match one to one")
    k = num_kept(n, rate)
    if k == n:
        keep = torch.arange(n, device=tokens.device)
    else:
        keep = torch.randperm(n, generator=generator)[:k].sort().values.to(tokens.device)  # [k]
    return tokens[keep], coords[keep], keep


def random_drop_rates(batch: int, max_rate: float, generator: torch.Generator | None = None,
                      min_rate: float = 0.0) -> torch.Tensor:
    """A rate per example, uniform in [min_rate, max_rate] (NaViT draws one per image).

    Shapes: -> [batch] float.
    """
    _check_rate(max_rate), _check_rate(min_rate)
    if min_rate > max_rate:
        raise ValueError(f"min_rate {min_rate} is above max_rate {max_rate}")
    return min_rate + (max_rate - min_rate) * torch.rand(batch, generator=generator, dtype=torch.float64)


def resolution_drop_rate(n_tokens: int, n_min: int, n_max: int, min_rate: float = 0.0,
                         max_rate: float = 0.5) -> float:
    """A rate that grows linearly with the example's token count: small examples keep all their
    tokens, the largest drop ``max_rate`` (so big videos cost less and small ones lose no detail)."""
    _check_rate(min_rate), _check_rate(max_rate)
    if n_max <= n_min:
        return float(max_rate if n_tokens >= n_max else min_rate)
    frac = min(1.0, max(0.0, (n_tokens - n_min) / (n_max - n_min)))
    return float(min_rate + frac * (max_rate - min_rate))


def restore_tokens(kept: torch.Tensor, keep: torch.Tensor, n_total: int, fill: float = 0.0):
    """Put kept tokens back at their places in the full token order; the mask is the loss mask.

    Shapes: kept [k, D], keep [k] -> (full [n_total, D] with ``fill`` at dropped places,
    mask [n_total] bool, True where a token was kept).
    """
    if kept.shape[0] != keep.shape[0]:
        raise ValueError(f"{kept.shape[0]} tokens but {keep.shape[0]} kept indices")
    full = kept.new_full((n_total, *kept.shape[1:]), fill)
    full = full.index_copy(0, keep.to(kept.device), kept)  # differentiable w.r.t. kept
    mask = torch.zeros(n_total, dtype=torch.bool, device=kept.device)
    mask[keep] = True
    return full, mask
