"""FSQ bottleneck: round each latent channel to one of a few fixed levels (no codebook to learn).

Shapes: ``[B, C, (T), H, W]`` in and out with ``C = len(levels)``, indices ``[B, (T), H, W]``.
Reference: Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple"
(arXiv 2309.15505, appendix A.1). The implicit codebook is the grid of ``prod(levels)`` points,
so every code exists by construction: no commitment loss, no EMA, no dead codes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .bottleneck import BottleneckOutput, code_statistics


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round forward, identity backward (straight-through estimator)."""
    return x + (x.round() - x).detach()


class FSQ(nn.Module):
    """Finite scalar quantization with ``levels[i]`` values on channel ``i``, scaled into [-1, 1].

    ``bound`` squashes a channel into ``L`` bins with ``tanh`` (shifted by half a bin when ``L``
    is even so the bins stay symmetric), ``round_ste`` picks the bin, and dividing by ``L // 2``
    puts the codes in [-1, 1]. The code index is the mixed-radix number of the bins.
    """

    def __init__(self, levels: tuple[int, ...] = (8, 5, 5, 5)):
        super().__init__()
        if any(level < 2 for level in levels):
            raise ValueError(f"FSQ levels {tuple(levels)} must all be >= 2")
        self.levels = tuple(int(v) for v in levels)
        self.latent_channels = self.in_channels = len(self.levels)
        self.codebook_size = math.prod(self.levels)
        self.bits_per_position = math.log2(self.codebook_size)
        basis = torch.cumprod(torch.tensor((1,) + self.levels[:-1]), 0)
        self.register_buffer("_levels", torch.tensor(self.levels, dtype=torch.float32), persistent=False)
        self.register_buffer("_basis", basis, persistent=False)

    def _shape(self, t: torch.Tensor, ndim: int) -> torch.Tensor:
        return t.view(1, -1, *([1] * (ndim - 2)))  # broadcast along channels of [B, C, ...]

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        L = self._shape(self._levels, z.ndim)
        half = (L - 1) * (1 + 1e-3) / 2
        offset = torch.where(L % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """``[B, C, ...]`` real -> codes on the grid in [-1, 1], with straight-through gradients."""
        half_width = self._shape(self._levels, z.ndim) // 2
        return round_ste(self.bound(z.float())) / half_width

    def codes_to_indices(self, zq: torch.Tensor) -> torch.Tensor:
        """Grid codes ``[B, C, ...]`` -> integer index ``[B, ...]`` in ``[0, prod(levels))``."""
        half_width = self._shape(self._levels, zq.ndim) // 2
        digits = (zq * half_width + half_width).round().long()  # [B, C, ...] in [0, L)
        return (digits * self._shape(self._basis, zq.ndim)).sum(dim=1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Integer index ``[B, ...]`` -> grid codes ``[B, C, ...]`` (inverse of the above)."""
        digits = (indices.unsqueeze(1) // self._shape(self._basis, indices.ndim + 1)) \
            % self._shape(self._levels, indices.ndim + 1).long()
        half_width = self._shape(self._levels, indices.ndim + 1) // 2
        return (digits.float() - half_width) / half_width

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        with torch.autocast(device_type=h.device.type, enabled=False):
            zq = self.quantize(h)
        idx = self.codes_to_indices(zq.detach())
        stats = code_statistics(idx, self.codebook_size)
        return BottleneckOutput(z=zq, loss=zq.new_zeros(()), indices=idx,
                                metrics={"usage": stats["usage"], "perplexity": stats["perplexity"]})

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        return self.quantize(h).detach()
