"""Attention that keeps every packed example to itself: a block-diagonal boolean mask.

Shapes: segment_ids [S, L] (example id, -1 at padding) -> mask [S, 1, L, L], True = may attend.
NaViT (Dehghani et al. 2023, arXiv 2307.06304): masked self-attention so that tokens attend only
within their own image. Padding slots form a segment of their own, so no query row is fully
masked (a fully masked row gives NaN in a hand-written softmax). The attention itself runs in the
backbones: ``sora_mini.models.attention.full_attention`` (which of the mask and per-example groups
a pack uses, and the measurements behind it) over ``models.layers.dot_product_attention``.
"""

from __future__ import annotations

import torch


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
