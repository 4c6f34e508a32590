"""Patch n' Pack: examples of different token counts packed into fixed-length sequences.

Shapes: a list of B examples [n_i, D] (+ coords [n_i, 3]) -> PackedBatch with tokens [S, L, D],
coords [S, L, 3], segment_ids [S, L] (example index, -1 at padding), padding [S, L].
NaViT (Dehghani et al. 2023, arXiv 2307.06304): greedy packing of variable-resolution examples,
with masked attention keeping each example to itself; Sora trains on videos of native size this way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sora_mini.patches.attention import segment_attention_mask
from sora_mini.patches.dropping import drop_tokens, restore_tokens
from sora_mini.patches.patchify import patch_grid, patchify, unpatchify


@dataclass
class PackedBatch:
    """A batch of examples of different sizes packed into S sequences of L token slots.

    tokens [S, L, D]; coords [S, L, 3] long (t, y, x), 0 at padding; segment_ids [S, L] long, the
    example's index in the input list, -1 at padding; padding [S, L] bool, True at padding slots.
    locations[i] = (sequence, start, length) of example i; grids[i] = its token grid (nt, nh, nw)
    before dropping; keep[i] = long indices of its kept tokens in the full grid order.
    """

    tokens: torch.Tensor
    coords: torch.Tensor
    segment_ids: torch.Tensor
    padding: torch.Tensor
    locations: list[tuple[int, int, int]]
    grids: list[tuple[int, int, int]] | None = None
    keep: list[torch.Tensor] | None = None
    patch_size: tuple[int, int, int] | None = None

    # --- sizes -----------------------------------------------------------------------------
    @property
    def num_examples(self) -> int:
        return len(self.locations)

    @property
    def num_sequences(self) -> int:
        return self.tokens.shape[0]

    @property
    def max_len(self) -> int:
        return self.tokens.shape[1]

    @property
    def lengths(self) -> list[int]:
        """Tokens of each example in the pack (after dropping)."""
        return [n for _, _, n in self.locations]

    @property
    def valid(self) -> torch.Tensor:
        """[S, L] bool, True at real tokens: the loss mask of the packed outputs."""
        return ~self.padding

    def real_share(self) -> float:
        """Share of the S * L slots that hold real tokens."""
        return float(sum(self.lengths)) / float(self.padding.numel())

    # --- what the backbone uses -------------------------------------------------------------
    def attention_mask(self) -> torch.Tensor:
        """[S, 1, L, L] bool block-diagonal mask, True = may attend (see ``segment_attention_mask``)."""
        return segment_attention_mask(self.segment_ids, self.padding)

    def broadcast(self, values: torch.Tensor) -> torch.Tensor:
        """Give every token its example's row of ``values`` (timestep or caption embeddings, ...).

        Shapes: values [B, ...] -> [S, L, ...], zeros at padding.
        """
        if values.shape[0] != self.num_examples:
            raise ValueError(f"values has {values.shape[0]} rows for {self.num_examples} packed examples")
        ids = self.segment_ids.clamp(min=0).to(values.device)
        out = values[ids]  # [S, L, ...]
        keep = (~self.padding).to(values.device).reshape(*ids.shape, *([1] * (values.ndim - 1)))
        return out * keep.to(out.dtype)

    def flat_index(self) -> torch.Tensor:
        """Long [sum n_i]: where each example's tokens sit in the flattened [S*L] slots, in order."""
        L = self.max_len
        parts = [torch.arange(s * L + a, s * L + a + n) for s, a, n in self.locations]
        return torch.cat(parts).to(self.tokens.device)

    def unpack(self, outputs: torch.Tensor) -> list[torch.Tensor]:
        """Split packed outputs back into one tensor per example, in input order (differentiable).

        Shapes: outputs [S, L, D'] -> list of B tensors [n_i, D'].
        """
        if tuple(outputs.shape[:2]) != (self.num_sequences, self.max_len):
            raise ValueError(f"outputs {list(outputs.shape)} do not match the pack "
                             f"[{self.num_sequences}, {self.max_len}, ...]")
        flat = outputs.reshape(-1, *outputs.shape[2:])  # [S*L, D']
        return list(flat[self.flat_index().to(outputs.device)].split(self.lengths))

    def unpatchify(self, outputs: torch.Tensor, fill: float = 0.0):
        """Packed patch outputs back to one latent per example; dropped tokens get ``fill``.

        Shapes: outputs [S, L, C*pt*ph*pw] -> (list of [C, t, h, w], list of bool [t, h, w] masks,
        True where the token was kept; expand over the patch for a pixel-level loss mask).
        """
        if self.grids is None or self.keep is None or self.patch_size is None:
            raise ValueError("this pack has no grids / patch size: build it with pack_latents")
        latents, masks = [], []
        for out, grid, keep in zip(self.unpack(outputs), self.grids, self.keep):
            n = grid[0] * grid[1] * grid[2]
            full, mask = restore_tokens(out, keep, n, fill=fill)  # [n, D'], [n]
            latents.append(unpatchify(full, grid, self.patch_size))  # [C, t, h, w]
            masks.append(mask.reshape(grid))  # [nt, nh, nw]
        return latents, masks

    def to(self, device) -> PackedBatch:
        return dataclasses.replace(
            self, tokens=self.tokens.to(device), coords=self.coords.to(device),
            segment_ids=self.segment_ids.to(device), padding=self.padding.to(device),
        )


# ----------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------
def first_fit(lengths: Sequence[int], max_len: int, sort: bool = False) -> list[list[int]]:
    """Greedy first-fit: each example goes into the first sequence with room, else a new one.

    ``sort=True`` takes examples longest first (first-fit decreasing: fewer, fuller sequences).
    Returns the example indices of each sequence, in placement order.
    """
    lengths = [int(n) for n in lengths]
    if not lengths:
        raise ValueError("cannot pack an empty batch: pass at least one example")
    if max_len < 1:
        raise ValueError(f"pack length {max_len} must be at least 1")
    for i, n in enumerate(lengths):
        if n > max_len:
            raise ValueError(f"example {i} has {n} tokens, more than the pack length {max_len}: "
                             f"raise max_len to at least {n}, use a larger patch, or drop tokens")
        if n < 1:
            raise ValueError(f"example {i} has no tokens")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if sort else range(len(lengths))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, r in enumerate(room):
            if lengths[i] <= r:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(max_len - lengths[i])
    return bins


def _layout(tokens, coords, bins, max_len, pad_value, **extra) -> PackedBatch:
    """Write examples into [S, L] slots following ``bins`` (a list of example-index lists)."""
    dim = tokens[0].shape[-1]
    S, dev, dtype = len(bins), tokens[0].device, tokens[0].dtype
    out = torch.full((S, max_len, dim), pad_value, dtype=dtype, device=dev)  # [S, L, D]
    pos = torch.zeros(S, max_len, 3, dtype=torch.long, device=dev)  # [S, L, 3]
    seg = torch.full((S, max_len), -1, dtype=torch.long, device=dev)  # [S, L]
    locations: list[tuple[int, int, int]] = [(0, 0, 0)] * len(tokens)
    for s, members in enumerate(bins):
        start = 0
        for i in members:
            n = tokens[i].shape[0]
            out[s, start:start + n] = tokens[i]
            pos[s, start:start + n] = coords[i]
            seg[s, start:start + n] = i
            locations[i] = (s, start, n)
            start += n
    return PackedBatch(tokens=out, coords=pos, segment_ids=seg, padding=seg < 0, locations=locations, **extra)


def _check_examples(tokens, coords):
    if len(tokens) == 0:
        raise ValueError("cannot pack an empty batch: pass at least one example")
    if len(coords) != len(tokens):
        raise ValueError(f"{len(tokens)} token tensors but {len(coords)} coordinate tensors")
    dim = tokens[0].shape[-1]
    for i, (x, c) in enumerate(zip(tokens, coords)):
        if x.ndim != 2 or x.shape[-1] != dim:
            raise ValueError(f"example {i} has tokens of shape {list(x.shape)}; expected [n, {dim}]")
        if tuple(c.shape) != (x.shape[0], 3):
            raise ValueError(f"example {i} has coords {list(c.shape)}; expected [{x.shape[0]}, 3]")


def pack(tokens: Sequence[torch.Tensor], coords: Sequence[torch.Tensor], max_len: int,
         sort: bool = False, pad_value: float = 0.0, **extra) -> PackedBatch:
    """Pack examples [n_i, D] with coords [n_i, 3] into sequences of ``max_len`` by greedy first-fit.

    Shapes: lists of B tensors -> PackedBatch (tokens [S, max_len, D]). ``extra`` fills
    PackedBatch's optional fields (grids, keep, patch_size).
    """
    _check_examples(tokens, coords)
    bins = first_fit([x.shape[0] for x in tokens], max_len, sort=sort)
    return _layout(tokens, coords, bins, max_len, pad_value, **extra)


def pad_to_max(tokens: Sequence[torch.Tensor], coords: Sequence[torch.Tensor], pad_value: float = 0.0,
               **extra) -> PackedBatch:
    """The baseline without packing: one example per row, each padded to the longest example.

    Shapes: lists of B tensors [n_i, D] -> PackedBatch with tokens [B, max n_i, D].
    """
    _check_examples(tokens, coords)
    max_len = max(x.shape[0] for x in tokens)
    return _layout(tokens, coords, [[i] for i in range(len(tokens))], max_len, pad_value, **extra)


def pack_latents(latents: Sequence[torch.Tensor], patch_size, max_len: int,
                 drop_rates: Sequence[float] | torch.Tensor | None = None,
                 generator: torch.Generator | None = None, sort: bool = False,
                 pad_to_longest: bool = False) -> PackedBatch:
    """Patchify latents of any size, drop tokens (optional rate per example), and pack them.

    Shapes: B latents [C, t_i, h_i, w_i] -> PackedBatch with tokens [S, max_len, C*pt*ph*pw];
    ``pad_to_longest=True`` gives the pad-to-max baseline instead (``max_len`` is then unused).
    """
    if len(latents) == 0:
        raise ValueError("cannot pack an empty batch: pass at least one latent [C, t, h, w]")
    if drop_rates is not None and len(drop_rates) != len(latents):
        raise ValueError(f"{len(drop_rates)} drop rates for {len(latents)} latents")
    patch_size = tuple(int(p) for p in patch_size)
    tokens, coords, grids, keeps = [], [], [], []
    for i, z in enumerate(latents):
        if z.ndim != 4:
            raise ValueError(f"latent {i} has shape {list(z.shape)}; expected [C, t, h, w]")
        grid = patch_grid(z.shape, patch_size)
        x, c = patchify(z, patch_size)  # [n, D], [n, 3]
        keep = torch.arange(x.shape[0], device=x.device)
        if drop_rates is not None and float(drop_rates[i]) > 0:
            x, c, keep = drop_tokens(x, c, float(drop_rates[i]), generator=generator)  # [k, D], [k, 3]
        tokens.append(x), coords.append(c), grids.append(grid), keeps.append(keep)
    extra = {"grids": grids, "keep": keeps, "patch_size": patch_size}
    if pad_to_longest:
        return pad_to_max(tokens, coords, **extra)
    return pack(tokens, coords, max_len, sort=sort, **extra)
