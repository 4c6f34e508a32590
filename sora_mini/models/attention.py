"""Which tokens attend to which: full space-time, per frame (spatial) or per position (temporal).

Shapes: tokens [S, L, D] (S rows; a row is one video, or several packed videos told apart by
segment ids [S, L], -1 = padding). A plan is built once per forward pass and called in every
block as ``plan(attn, x) -> [S, L, D]``, where ``attn`` is a timm ``Attention``.

- Full attention: one softmax over every token of an example (NaViT, Dehghani et al. 2023): packed
  rows run each example alone, examples of one length batched (``LengthGroups``), at cost ~ n^2
  per example rather than L^2 per row for the block-diagonal segment mask.
- Factorized attention (Latte, Ma et al. 2024, arXiv 2401.03048, variant 1; Open-Sora STDiT):
  spatial blocks attend within a frame, temporal blocks across frames at one position. Cost ~
  T*S^2 + S*T^2 instead of (T*S)^2. Plain batches regroup with a rearrange; packed rows gather
  the tokens of each (example, frame) or (example, position) into padded groups (``TokenGroups``).
"""

from __future__ import annotations

import torch
from einops import rearrange

ATTENTION_TYPES = ("full", "factorized")


class TokenGroups:
    """Gather tokens into padded groups by a key, run attention per group, scatter back.

    Shapes: key [S, L] long (tokens with equal key in a row form a group; key < 0: no group) ->
    ``split(x [S, L, D]) -> [G, M, D]`` (M = largest group), ``merge`` the inverse (tokens in no
    group get 0), ``mask`` [G, 1, 1, M] bool (None when every group is full).
    """

    def __init__(self, key: torch.Tensor):
        S, L = key.shape
        flat = key.reshape(-1)
        idx = (flat >= 0).nonzero().squeeze(1)  # flat positions of grouped tokens
        row = idx // L
        global_key = row * (int(flat.max().clamp(min=0)) + 1) + flat[idx]
        global_key, order = torch.sort(global_key, stable=True)  # stable: keep token order in a group
        self.idx = idx[order]
        _, counts = torch.unique_consecutive(global_key, return_counts=True)
        self.groups, self.size = int(counts.numel()), int(counts.max()) if counts.numel() else 0
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(self.idx.numel(), device=key.device) - starts.repeat_interleave(counts)
        self.slot = torch.arange(self.groups, device=key.device).repeat_interleave(counts) * self.size + pos
        self.shape = (S, L)
        self.mask = None
        if bool((counts != self.size).any()):
            valid = torch.zeros(self.groups * self.size, dtype=torch.bool, device=key.device)
            valid[self.slot] = True
            self.mask = valid.view(self.groups, 1, 1, self.size)  # keys only: padded queries see real keys

    def split(self, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        out = x.new_zeros(self.groups * self.size, d)
        out = out.index_copy(0, self.slot, x.reshape(-1, d).index_select(0, self.idx))
        return out.view(self.groups, self.size, d)  # [G, M, D]

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        d = y.shape[-1]
        out = y.new_zeros(self.shape[0] * self.shape[1], d)
        out = out.index_copy(0, self.idx, y.reshape(-1, d).index_select(0, self.slot))
        return out.view(*self.shape, d)  # [S, L, D]

    def __call__(self, attn, x: torch.Tensor) -> torch.Tensor:
        return self.merge(attn(self.split(x), attn_mask=self.mask))


class MaskedAttention:
    """Full attention under a boolean mask [S, 1, L, L] (None = everything attends to everything)."""

    def __init__(self, mask: torch.Tensor | None):
        self.mask = mask

    def __call__(self, attn, x: torch.Tensor) -> torch.Tensor:
        return attn(x, attn_mask=self.mask)


class LengthGroups:
    """Full attention example by example, with no mask and no padding: the examples of equal
    length (from every row) are gathered into one batch [G_n, n, D], attention runs once per
    length, and the outputs are scattered back (padding slots get 0).

    Shapes: segment_ids [S, L] long (example id within its row, -1 = padding; an example's tokens
    may lie anywhere in its row, in order) -> ``__call__(attn, x [S, L, D]) -> [S, L, D]``.
    The cost is sum_n G_n n^2 against S L^2 for the block-diagonal mask, which on the small mix
    computes about 2.6 scores for every real one (35-39 % of a [512, 512] row's pairs are real).
    """

    def __init__(self, segment_ids: torch.Tensor):
        S, L = segment_ids.shape
        flat = segment_ids.reshape(-1)
        idx = (flat >= 0).nonzero().squeeze(1)  # flat positions of real tokens, row-major
        example = (idx // L) * (int(flat.max().clamp(min=0)) + 1) + flat[idx]  # one key per (row, id)
        example, order = torch.sort(example, stable=True)  # stable: each example's tokens in order
        idx = idx[order]
        _, counts = torch.unique_consecutive(example, return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        self.groups = []  # [G_n, n] flat token positions, one tensor per length n
        for n in torch.unique(counts).tolist():
            first = starts[counts == n]  # [G_n]
            self.groups.append(idx[first[:, None] + torch.arange(n, device=idx.device)])
        self.index = torch.cat([g.reshape(-1) for g in self.groups])  # where the outputs go
        self.shape = (S, L)

    def __call__(self, attn, x: torch.Tensor) -> torch.Tensor:
        d = x.shape[-1]
        flat = x.reshape(-1, d)
        outs = [attn(flat.index_select(0, g.reshape(-1)).view(*g.shape, d)).reshape(-1, d)
                for g in self.groups]  # each [G_n * n, D]
        out = flat.new_zeros(self.shape[0] * self.shape[1], d).index_copy(0, self.index, torch.cat(outs))
        return out.view(*self.shape, d)  # [S, L, D]


def full_attention(segment_ids: torch.Tensor | None) -> MaskedAttention | LengthGroups:
    """The plan of full attention: every token attends to the tokens of its own example only.

    Shapes: segment_ids [S, L] long (example id, -1 = padding) or None (one example per row, none
    padded). Rows that each hold one example without padding need no mask (one call). Packed rows
    get :class:`LengthGroups`: each example alone, examples of equal length batched together, so
    no score is computed between two examples or for padding. The block-diagonal mask
    (:class:`MaskedAttention` of ``segment_attention_mask``, one call over [S, L] at cost S L^2)
    gives the same outputs at the real tokens. Measured side by side (``benchmarks/bench_packing.py
    --plans``, fwd+bwd of one backbone attention layer, qkv and projection included, 2-core AVX2
    CPU): on the small mix (4 x 512 slots, 13 examples, width 256) 39.9 ms against the mask's 55.4
    ms in fp32 (0.72x; 0.75x in emulated bf16), at base width 0.73x, on tiny's mix 1.00x; per-example
    groups padded to the longest example (``TokenGroups`` keyed by segment id) took 1.5x the mask's
    time. A whole training step of the small recipe (fwd+bwd, 9 interleaved steps each): median
    3.27 s with the mask, 2.96 s with length groups.
    """
    if segment_ids is None or bool(((segment_ids == segment_ids[:, :1]) & (segment_ids >= 0)).all()):
        return MaskedAttention(None)
    return LengthGroups(segment_ids)


class GridAttention:
    """Factorized attention on a plain batch laid out t-major [B, T*Hp*Wp, D]: a rearrange, no gather."""

    def __init__(self, frames: int, axis: str):
        self.frames, self.axis = frames, axis

    def __call__(self, attn, x: torch.Tensor) -> torch.Tensor:
        T, B = self.frames, x.shape[0]
        if self.axis == "spatial":
            y = attn(rearrange(x, "b (t s) d -> (b t) s d", t=T))  # [B*T, S, D]
            return rearrange(y, "(b t) s d -> b (t s) d", t=T)
        y = attn(rearrange(x, "b (t s) d -> (b s) t d", t=T))  # [B*S, T, D]
        return rearrange(y, "(b s) t d -> b (t s) d", b=B)


def factorized_keys(coords: torch.Tensor, segment_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Group keys for spatial (same example and frame) and temporal (same example and position) attention.

    Shapes: coords [S, L, 3] long (t, y, x), segment_ids [S, L] (-1 = padding) -> two [S, L] long.
    """
    t, y, x = coords.unbind(-1)
    nt, ny, nx = (int(c.max()) + 1 for c in (t, y, x))
    seg = segment_ids.clamp(min=0)
    pad = segment_ids < 0
    spatial = (seg * nt + t).masked_fill(pad, -1)
    temporal = (seg * (ny * nx) + y * nx + x).masked_fill(pad, -1)
    return spatial, temporal


def attention_plans(attention: str, coords: torch.Tensor, segment_ids: torch.Tensor | None,
                    grid: tuple[int, int, int] | None = None):
    """One plan per block kind: ``{"full": plan}`` or ``{"spatial": plan, "temporal": plan}``.

    ``grid`` (nt, nh, nw) marks a plain t-major batch without padding (the rearrange fast path);
    otherwise ``coords`` [S, L, 3] and ``segment_ids`` [S, L] (None = one example per row) decide.
    """
    if attention not in ATTENTION_TYPES:
        raise ValueError(f"unknown attention {attention!r}; allowed: {', '.join(ATTENTION_TYPES)}")
    if attention == "full":
        return {"full": full_attention(segment_ids)}
    if grid is not None and segment_ids is None:
        return {"spatial": GridAttention(grid[0], "spatial"), "temporal": GridAttention(grid[0], "temporal")}
    if segment_ids is None:
        segment_ids = torch.zeros(coords.shape[:2], dtype=torch.long, device=coords.device)
    spatial, temporal = factorized_keys(coords, segment_ids)
    return {"spatial": TokenGroups(spatial), "temporal": TokenGroups(temporal)}


def block_kinds(attention: str, depth: int) -> list[str]:
    """The attention of each block: all ``full``, or ``spatial`` / ``temporal`` interleaved (Latte)."""
    if attention == "full":
        return ["full"] * depth
    return ["spatial" if i % 2 == 0 else "temporal" for i in range(depth)]


def attention_flops(tokens_per_frame: int, frames: int, hidden: int, attention: str) -> float:
    """Multiply-add FLOPs (x2) of the softmax attention (QK^T and AV) of one block on one video.

    Full: 4 (T S)^2 D. Factorized blocks alternate 4 T S^2 D (spatial) and 4 S T^2 D (temporal);
    the value given is their mean, so depth * value is the attention cost of the whole model.
    """
    s, t, d = tokens_per_frame, frames, hidden
    if attention == "full":
        return 4.0 * (t * s) ** 2 * d
    return 0.5 * (4.0 * t * s * s * d + 4.0 * s * t * t * d)
