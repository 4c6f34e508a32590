"""What every bottleneck returns, so the autoencoder can swap KL, VQ and FSQ without knowing which.

A bottleneck sits between encoder and decoder. It takes the encoder's features
``h: [B, C_in, (T), H, W]`` and returns the latent the decoder sees, ``z: [B, C, (T), H, W]``,
with its own loss term (KL or commitment, already weighted) and figures to log.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from einops import rearrange


@dataclass
class BottleneckOutput:
    """``z`` for the decoder, the weighted ``loss`` to add, ``metrics`` to log, code ``indices``."""

    z: torch.Tensor  # [B, C, (T), H, W]
    loss: torch.Tensor  # scalar
    metrics: dict[str, float] = field(default_factory=dict)
    indices: torch.Tensor | None = None  # [B, (T), H, W] for quantizers, else None


def channels_last_rows(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, ...] -> [N, C]``: one row per latent position (what a quantizer looks at)."""
    return rearrange(x, "b c ... -> (b ...) c")


def rows_to_channels_first(rows: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`channels_last_rows`: ``[N, C] -> [B, C, ...]`` shaped as ``like``."""
    b, _, *rest = like.shape
    out = rows.reshape(b, *rest, rows.shape[-1])  # [B, ..., C]
    return out.movedim(-1, 1).contiguous()


def code_statistics(indices: torch.Tensor, codebook_size: int) -> dict[str, float]:
    """Codebook usage (fraction of codes hit at least once) and perplexity ``exp(H(p))`` of the hits.

    Perplexity is the effective number of codes in use: ``codebook_size`` when every code is hit
    equally often, 1 when a single code takes everything.
    """
    counts = torch.bincount(indices.reshape(-1), minlength=codebook_size).double()
    p = counts / counts.sum().clamp_min(1)
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"usage": (counts > 0).double().mean().item(), "perplexity": math.exp(entropy)}
