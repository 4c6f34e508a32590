"""Attention that keeps every packed example to itself: a block-diagonal boolean mask for SDPA.

Shapes: segment_ids [S, L] (example id, -1 at padding) -> mask [S, 1, L, L], True = may attend;
masked_attention(q, k, v [S, H, L, Dh], mask) -> [S, H, L, Dh].
NaViT (Dehghani et al. 2023, arXiv 2307.06304): masked self-attention so that tokens attend only
within their own image. On a CPU, ``F.scaled_dot_product_attention`` with a boolean mask is the
simplest exact choice; padding slots form a segment of their own, so no query row is fully
masked (a fully masked row gives NaN in a hand-written softmax).

No faster path is shipped: none was reliably faster here (torch 2.14 CPU, 2 busy shared cores;
``benchmarks/bench_packing.py``, forward+backward, all equal to the mask within 1e-6). One SDPA call
per example took 0.7x-1.8x the mask's time on the small mix (4 x 512 slots) and 2.3x-4.2x on
tiny's many short examples; nested jagged tensors 2.7x-9x; FlexAttention has no CPU backward in
this torch, and its eager forward took about 7x the mask's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def segment_attention_mask(segment_ids: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
    """Block-diagonal mask: token i may attend to token j iff they belong to the same example.

    Shapes: segment_ids [S, L] long (-1 = padding), padding [S, L] bool or None -> [S, 1, L, L] bool.
    Real tokens never see padding; padding slots see only padding, so every row has a True.
    """
    if segment_ids.ndim != 2:
        raise ValueError(f"segment_ids must be [sequences, length], got shape {list(segment_ids.shape)}")
    ids = segment_ids
    if padding is not None:
        if padding.shape != segment_ids.shape:
            raise ValueError(f"padding {list(padding.shape)} and segment_ids {list(segment_ids.shape)} differ")
        ids = ids.masked_fill(padding, -1)
    ids = ids.clamp(min=-1)  # every negative id is padding
    return (ids[:, :, None] == ids[:, None, :]).unsqueeze(1)  # [S, 1, L, L]


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
                     dropout_p: float = 0.0) -> torch.Tensor:
    """Scaled dot-product attention under a boolean mask (True = attend): the reference path.

    Shapes: q, k, v [S, H, L, Dh], mask [S, 1 or H, L, L] bool -> [S, H, L, Dh].
    """
    if mask is not None and mask.dtype != torch.bool:
        raise ValueError(f"mask must be boolean (True = attend), got {mask.dtype}")
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
