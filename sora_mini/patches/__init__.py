"""Spacetime latent patches, Patch n' Pack, token dropping and position embeddings for any size.

Sora turns a latent video of any duration, resolution and aspect ratio into a sequence of
spacetime patches, and packs examples of different sizes into fixed-length sequences (Patch n'
Pack, NaViT: Dehghani et al. 2023, arXiv 2307.06304) instead of resizing, cropping or padding.

API (what the backbones build against)
--------------------------------------
patchify(latent [..., C, t, h, w], patch=(pt, ph, pw)) -> (tokens [..., n, C*pt*ph*pw], coords [n, 3])
    Tokens run t-major, then y, then x; features are ordered (c pt ph pw), i.e. the flattened
    weight of a Conv3d patch embedding. coords are long (t, y, x) in patch units.
unpatchify(tokens [..., n, D], grid=(nt, nh, nw), patch) -> [..., C, t, h, w]   (exact inverse)
patch_grid(latent_shape, patch) -> (nt, nh, nw)   (a clear error when a side is not a multiple)
patchify.latent_grid((H, W), T, spatial_factor, temporal_factor, patch) -> (nt, nh, nw) of a video
patchify.pooled_latent(video [C, T, H, W], s, k) -> [C, 1+(T-1)/k, H/s, W/s]  (a stand-in latent)
latent_frames(T, k) -> 1 + (T-1)//k, the causal rule (an error naming the nearest valid T);
    nearest_frame_counts(T, k), frames_fit(T, k)
frames.latent_frame_of(i, k), frames.pixel_frames_of(j, k) -> range: pixel <-> latent frames;
    latent_given(bool [T], k) -> bool [t] (a latent frame is given when all its pixel frames are),
    pixel_given(bool [t], k) -> bool [T]; head_pixel_frames(n, k), tail_pixel_frames(n, k)

pack_latents(latents: list of [C, t_i, h_i, w_i], patch, max_len, drop_rates=None, generator=None,
             sort=False, pad_to_longest=False)
    -> PackedBatch        (patchify, optional token dropping, greedy first-fit packing)
pack(tokens: list of [n_i, D], coords: list of [n_i, 3], max_len, sort=False) -> PackedBatch
pad_to_max(tokens, coords) -> PackedBatch    (the baseline: one example per row, padded)
first_fit(lengths, max_len, sort=False) -> list of example-index lists, one per sequence
layouts.bucket_batches(keys, lengths, tokens_per_batch | batch_size) -> list of index lists
layouts.layout_packed / layout_pad_to_max / layout_buckets -> Layout(rows, slots, real, real_share,
    pairs, real_pairs, real_pair_share: the share of dense-mask attention FLOPs on real pairs)

PackedBatch (a dataclass; S = number of packed sequences, L = max_len)
    tokens       [S, L, D]  float; padding slots hold 0
    coords       [S, L, 3]  long (t, y, x) in patch units; 0 at padding
    segment_ids  [S, L]     long: index of the example in the input list (0..B-1), -1 at padding.
                            Global ids, so per-example conditioning is ``cond[segment_ids]``
                            (see ``PackedBatch.broadcast``).
    padding      [S, L]     bool: True at padding slots (``.valid = ~padding`` is the loss mask)
    locations    list of (sequence, start, length) per example, in input order
    grids        list of (nt, nh, nw) token grid per example before dropping
    keep         list of long [n_i] per example: indices of the kept tokens in the full grid
                 (``arange(nt*nh*nw)`` when nothing is dropped)
    patch_size   (pt, ph, pw)
    .attention_mask()            -> bool [S, 1, L, L], True = may attend (block-diagonal)
    .unpack(outputs [S, L, D'])  -> list of [n_i, D'] per example (differentiable)
    .flat_index()                -> long [sum n_i]: each example's slots in the flattened [S*L]
    .real_share(), .lengths, .num_examples, .num_sequences, .max_len, .to(device)
    .broadcast(values [B, ...])  -> [S, L, ...]: each token gets its example's row; 0 at padding
    .unpatchify(outputs [S, L, C*pt*ph*pw]) -> (list of [C, t, h, w], list of bool [t, h, w]
                                                masks: True where the token was kept)

segment_attention_mask(segment_ids [S, L], padding [S, L] | None) -> bool [S, 1, L, L]
    (the attention that reads it: ``sora_mini.models.full_attention``)

sincos_3d(coords [..., 3], dim, base_grid=None, grid=None) -> [..., dim]     (default embedding)
rope_3d(coords [..., 3], head_dim) -> (cos, sin) [..., head_dim/2];  apply_rope(x, cos, sin)

drop_tokens(tokens [n, D], coords [n, 3], rate, generator) -> (tokens [k, D], coords [k, 3], keep [k])
random_drop_rates(batch, max_rate, generator) -> [batch];  resolution_drop_rate(n_tokens, ...) -> float
restore_tokens(kept [k, D], keep [k], n_total) -> (full [n_total, D], kept_mask [n_total])
"""

from sora_mini.patches.attention import segment_attention_mask
from sora_mini.patches.dropping import (
    drop_tokens,
    random_drop_rates,
    resolution_drop_rate,
    restore_tokens,
)
from sora_mini.patches.frames import (
    head_pixel_frames,
    latent_frame_of,
    latent_given,
    pixel_frames_of,
    pixel_given,
    tail_pixel_frames,
)
from sora_mini.patches.pack import PackedBatch, first_fit, pack, pack_latents, pad_to_max
from sora_mini.patches.patchify import (
    frames_fit,
    grid_coords,
    latent_frames,
    nearest_frame_counts,
    patch_grid,
    patchify,
    unpatchify,
)
from sora_mini.patches.positions import apply_rope, rope_3d, sincos_1d, sincos_3d, split_dims

__all__ = [
    "PackedBatch",
    "apply_rope",
    "drop_tokens",
    "first_fit",
    "frames_fit",
    "grid_coords",
    "head_pixel_frames",
    "latent_frame_of",
    "latent_frames",
    "latent_given",
    "nearest_frame_counts",
    "pack",
    "pack_latents",
    "pad_to_max",
    "patch_grid",
    "patchify",
    "pixel_frames_of",
    "pixel_given",
    "random_drop_rates",
    "resolution_drop_rate",
    "restore_tokens",
    "rope_3d",
    "segment_attention_mask",
    "sincos_1d",
    "sincos_3d",
    "split_dims",
    "tail_pixel_frames",
    "unpatchify",
]
