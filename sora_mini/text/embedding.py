"""The one interface of every text encoder: ``encode(prompts) -> TextEmbedding``.

    tokens  [B, L, D]  one vector per token (what cross-attention / MMDiT read)
    mask    [B, L]     bool, True on real tokens (padding is False; every row has a True)
    pooled  [B, D]     one vector per prompt (what adaLN / CLIP read)

``masked_mean`` is the mean over the real tokens, the pooling of sentence-transformers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch


@dataclass
class TextEmbedding:
    """Encoded prompts: ``tokens [B, L, D]``, ``mask [B, L]`` bool, ``pooled [B, D]``."""

    tokens: torch.Tensor
    mask: torch.Tensor
    pooled: torch.Tensor

    def __post_init__(self):
        b, length, d = self.tokens.shape
        if self.mask.shape != (b, length) or self.pooled.shape != (b, d):
            raise ValueError(f"inconsistent TextEmbedding: tokens {tuple(self.tokens.shape)}, mask "
                             f"{tuple(self.mask.shape)}, pooled {tuple(self.pooled.shape)}; expected "
                             "[B, L, D], [B, L], [B, D]")

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def dim(self) -> int:
        return self.tokens.shape[-1]

    def to(self, device) -> TextEmbedding:
        """The same embedding on ``device``."""
        return TextEmbedding(self.tokens.to(device), self.mask.to(device), self.pooled.to(device))

    def pad_to(self, length: int) -> TextEmbedding:
        """Right-pad (zeros, mask False) or cut to ``length`` tokens."""
        b, cur, d = self.tokens.shape
        if cur >= length:
            return TextEmbedding(self.tokens[:, :length], self.mask[:, :length], self.pooled)
        pad = self.tokens.new_zeros(b, length - cur, d)
        return TextEmbedding(torch.cat([self.tokens, pad], 1),
                             torch.cat([self.mask, self.mask.new_zeros(b, length - cur)], 1), self.pooled)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``tokens [B, L, D]`` over the positions where ``mask [B, L]`` is True -> ``[B, D]``."""
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp(min=1.0)


class TextEncoder(Protocol):
    """What the diffusion models need from a text encoder."""

    dim: int
    max_length: int

    def encode(self, prompts: list[str], *, allow_empty: bool = False) -> TextEmbedding: ...


def whitening(tokens: torch.Tensor, mask: torch.Tensor, *, eps: float = 1e-3,
              max_tokens: int = 200_000) -> tuple[torch.Tensor, torch.Tensor]:
    """ZCA whitening of caption token embeddings: ``(mean [D], matrix [D, D])`` with
    ``(x - mean) @ matrix`` of unit covariance over the real tokens of ``tokens`` [N, L, D] (``mask``
    [N, L] bool), directions of variance below ``eps`` x the largest one floored there (so noise
    is not blown up). At most ``max_tokens`` tokens are used (evenly spaced)."""
    real = tokens[mask].float()  # [n, D]
    if real.shape[0] < 2:
        raise ValueError(f"whitening needs at least 2 real tokens, got {real.shape[0]}")
    if real.shape[0] > max_tokens:
        real = real[torch.linspace(0, real.shape[0] - 1, max_tokens).long()]
    mean = real.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((real - mean).T.double()))
    values = values.clamp(min=eps * float(values.max()))
    matrix = (vectors * values.rsqrt()) @ vectors.T  # V diag(1 / sqrt(lambda)) V^T
    return mean, matrix.float()
