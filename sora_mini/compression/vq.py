"""VQ bottleneck: snap each latent vector to its nearest code in a learned codebook (a VQ-VAE).

Shapes: ``[B, C, (T), H, W]`` in and out, plus code indices ``[B, (T), H, W]``.
References: van den Oord et al. 2017 (arXiv 1711.00937) for the loss and the straight-through
estimator; the codebook follows exponential moving averages of its assigned vectors instead of a
gradient (Razavi et al. 2019, arXiv 1906.00446, appendix); codes nobody uses are restarted on
random encoder outputs (SoundStream, arXiv 2107.03312; lucidrains ``vector-quantize-pytorch``).
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .bottleneck import (
    BottleneckOutput,
    channels_last_rows,
    code_statistics,
    rows_to_channels_first,
)


def _all_reduce(t: torch.Tensor) -> torch.Tensor:
    """Sum over processes under DDP, so every replica keeps the same codebook; no-op otherwise."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t


class VectorQuantizer(nn.Module):
    """Nearest-code quantizer with an EMA codebook, commitment loss and dead-code restart.

    Per step, for encoder rows ``z`` (one per latent position):
      ``k = argmin_j ||z - e_j||^2``, ``z_q = e_k``
      ``loss = beta * ||z - sg(z_q)||^2`` (commitment: the encoder moves toward its code; the
      codebook itself moves by EMA, so it needs no codebook loss term)
      ``z_q <- z + sg(z_q - z)`` (straight-through: the decoder's gradient passes to the encoder)
    EMA (training only): ``n_k <- d n_k + (1-d) count_k``, ``s_k <- d s_k + (1-d) sum z``,
    ``e_k = s_k / n_k`` (Laplace-smoothed). A code whose ``n_k`` falls below ``dead_threshold``
    (expected hits per batch) is moved onto a random row of the current batch.
    """

    def __init__(self, dim: int, codebook_size: int = 512, decay: float = 0.99,
                 commitment: float = 0.25, dead_threshold: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.latent_channels = self.in_channels = dim
        self.codebook_size, self.decay, self.eps = codebook_size, decay, eps
        self.commitment, self.dead_threshold = commitment, dead_threshold
        self.bits_per_position = math.log2(codebook_size)
        self.register_buffer("embed", torch.randn(codebook_size, dim) * 0.1)  # [K, C]
        self.register_buffer("embed_avg", self.embed.clone())  # [K, C]
        self.register_buffer("cluster_size", torch.ones(codebook_size))  # [K]
        self.register_buffer("initialized", torch.tensor(False))
        self.restarts = 0  # codes restarted since construction (for logging)

    # ------------------------------------------------------------------------------------------
    def nearest(self, rows: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row: ``[N, C] -> [N]`` (``|z|^2 - 2 z.e + |e|^2``)."""
        d = rows.pow(2).sum(1, keepdim=True) - 2 * rows @ self.embed.t() + self.embed.pow(2).sum(1)
        return d.argmin(dim=1)

    def forward(self, h: torch.Tensor) -> BottleneckOutput:
        with torch.autocast(device_type=h.device.type, enabled=False):  # distances in fp32
            rows = channels_last_rows(h.float())  # [N, C]
            if self.training and not bool(self.initialized):
                self._init_from(rows.detach())
            idx = self.nearest(rows.detach())  # [N]
            codes = self.embed[idx]  # [N, C], taken before this step's codebook update
            if self.training:
                self._ema_update(rows.detach(), idx)
                self._restart_dead(rows.detach())
            commit = F.mse_loss(rows, codes.detach())
            z_q = rows + (codes - rows).detach()  # straight-through estimator
        stats = code_statistics(idx, self.codebook_size)
        metrics = {"commitment": commit.item(), "usage": stats["usage"],
                   "perplexity": stats["perplexity"]}
        return BottleneckOutput(z=rows_to_channels_first(z_q, h), loss=self.commitment * commit,
                                metrics=metrics, indices=idx.reshape(h.shape[0], *h.shape[2:]))

    def latent(self, h: torch.Tensor) -> torch.Tensor:
        """The quantized latent (codebook vectors) used for diffusion."""
        rows = channels_last_rows(h.float())
        return rows_to_channels_first(self.embed[self.nearest(rows)], h)

    def codes_to_latent(self, indices: torch.Tensor) -> torch.Tensor:
        """Code indices ``[B, (T), H, W]`` -> latent ``[B, C, (T), H, W]``."""
        return self.embed[indices].movedim(-1, 1).contiguous()

    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _init_from(self, rows: torch.Tensor) -> None:
        """Data-dependent start: codes are random encoder outputs of the first batch."""
        pick = torch.randint(0, rows.shape[0], (self.codebook_size,), device=rows.device)
        self._broadcast_set(rows[pick] + 1e-3 * torch.randn_like(rows[pick]), 1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _ema_update(self, rows: torch.Tensor, idx: torch.Tensor) -> None:
        onehot = F.one_hot(idx, self.codebook_size).type(rows.dtype)  # [N, K]
        counts = _all_reduce(onehot.sum(0))  # [K]
        sums = _all_reduce(onehot.t() @ rows)  # [K, C]
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.codebook_size * self.eps) * n
        self.embed.copy_(self.embed_avg / smoothed.unsqueeze(1))

    @torch.no_grad()
    def _restart_dead(self, rows: torch.Tensor) -> None:
        dead = self.cluster_size < self.dead_threshold  # [K]
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        pick = torch.randint(0, rows.shape[0], (n_dead,), device=rows.device)
        new = self.embed.clone()
        new[dead] = rows[pick]
        size = self.cluster_size.clone()
        size[dead] = self.dead_threshold  # a fresh code gets the benefit of the doubt
        self._broadcast_set(new, size)
        self.restarts += n_dead

    def _broadcast_set(self, embed: torch.Tensor, size) -> None:
        """Set codebook and counts (rank 0's choice under DDP, so replicas stay identical)."""
        size = torch.as_tensor(size, dtype=embed.dtype, device=embed.device).expand(self.codebook_size)
        embed, size = embed.contiguous(), size.contiguous().clone()
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(embed, 0)
            dist.broadcast(size, 0)
        self.embed.copy_(embed)
        self.cluster_size.copy_(size)
        self.embed_avg.copy_(embed * size.unsqueeze(1))
