"""How clean condition frames and captions enter a video DiT, each way the field uses.

Frame conditioning (prediction, extension, image-to-video). Every way sees the same inputs: the
noisy tokens x [S, L, P], the clean tokens ref [S, L, P] and ``given`` [S, L] (True where the
token belongs to a clean condition frame). The noisy values at given tokens are never read, so no
way can peek at the condition through x_t (whatever the objective puts there).

- ``adaln``: the given tokens are embedded, mean-pooled per video and added to the timestep
  vector that drives every adaLN (as VDT's AdaLN baseline; the pooling drops the layout).
- ``cross_attn``: every block cross-attends to the embedded given tokens (VDT's baseline).
- ``token_concat``: the clean tokens join the sequence at their own space-time positions, and the
  noisy tokens of those frames are left out (VDT, Lu et al. 2023, arXiv 2305.13311). Attention is
  permutation-equivariant and positions are added per token, so this is computed as replacement
  in place; every token keeps the video's timestep.
- ``in_place``: the same tokens, but the given ones are modulated with timestep 0 (Open-Sora
  1.x ``x_mask`` / ``t0``; LTX-Video's per-token ``t * (1 - mask)``).
- ``channel_concat``: [mask, masked clean reference] goes through a zero-initialised linear
  and is added to the patch embedding (Open-Sora 2.0 ``cond_in``, CogVideoX-I2V).
Captions: ``cross_attn`` (text tokens as context, pooled caption added to the modulation;
PixArt-alpha, Latte-1) or ``joint`` (MMDiT joint attention, SD3 / Open-Sora 2.0; ``mmdit.py``).
"""

from __future__ import annotations

import torch
from torch import nn

from sora_mini.models.layers import Context

FRAME_CONDITIONING = ("none", "adaln", "cross_attn", "token_concat", "in_place", "channel_concat")
TEXT_CONDITIONING = ("none", "cross_attn", "joint")


def check_choice(name: str, value: str, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    return value


# ----------------------------------------------------------------------------------------------
# Token bookkeeping
# ----------------------------------------------------------------------------------------------
def row_examples(segment_ids: torch.Tensor) -> torch.Tensor:
    """The examples present in each packed row, padded with -1. Shapes: [S, L] -> [S, E]."""
    rows = [torch.unique(r[r >= 0]) for r in segment_ids]
    width = max(1, max(len(r) for r in rows))
    out = segment_ids.new_full((segment_ids.shape[0], width), -1)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def select_tokens(values: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept tokens of each row, in order, padded to the longest row.

    Shapes: values [S, L, D], keep [S, L] bool -> ([S, K, D] (0 at padding), valid [S, K] bool).
    """
    counts = keep.sum(1)
    width = max(1, int(counts.max()))
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)[:, :width]  # kept first, in order
    picked = torch.gather(values, 1, order[..., None].expand(-1, -1, values.shape[-1]))
    valid = torch.arange(width, device=keep.device)[None] < counts[:, None]
    return picked * valid[..., None], valid


def make_context(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> Context | None:
    """Join context tokens and their raw masks into what cross-attention reads.

    Shapes: parts of (tokens [S, K_i, D], allowed [S, L, K_i] bool) -> Context with tokens
    [S, sum K_i, D], mask [S, 1, L, K] (None when everything is allowed) and keep [S, L, 1].
    Query rows with nothing to read attend everywhere (no NaN) and get keep = 0.
    """
    if not parts:
        return None
    tokens = torch.cat([p[0] for p in parts], dim=1)
    allowed = torch.cat([p[1] for p in parts], dim=-1)  # [S, L, K]
    if bool(allowed.all()):
        return Context(tokens)
    has = allowed.any(-1, keepdim=True)  # [S, L, 1]
    return Context(tokens, (allowed | ~has).unsqueeze(1), has.to(tokens.dtype))


# ----------------------------------------------------------------------------------------------
# Frame conditioning
# ----------------------------------------------------------------------------------------------
class FrameConditioner(nn.Module):
    """The parameters and token surgery of one frame-conditioning way (see the module docstring).

    Shapes: x, ref [S, L, P]; given [S, L] bool; pos [S|1, L, D]; segment ids [S, L].
    """

    def __init__(self, mode: str, patch_dim: int, hidden_size: int):
        super().__init__()
        self.mode = check_choice("frame conditioning", mode, FRAME_CONDITIONING)
        if mode in ("adaln", "cross_attn"):
            self.cond_embedder = nn.Linear(patch_dim, hidden_size)
        if mode == "adaln":
            self.cond_pool = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, hidden_size))
        if mode == "channel_concat":
            self.cond_in = nn.Linear(patch_dim + 1, hidden_size)  # [masked ref | mask] per token

    def zero_init(self) -> None:
        """Open-Sora 2.0: the channel-concat projection starts at zero, so it starts as unconditional."""
        if self.mode == "channel_concat":
            nn.init.zeros_(self.cond_in.weight)
            nn.init.zeros_(self.cond_in.bias)

    def tokens(self, x: torch.Tensor, ref: torch.Tensor | None, given: torch.Tensor | None) -> torch.Tensor:
        """The patch values the embedder sees: clean at given tokens (token_concat, in_place),
        else 0 there (the other ways carry the condition on their own route)."""
        if self.mode == "none" or given is None:
            return x
        g = given[..., None]
        if self.mode in ("token_concat", "in_place"):
            return torch.where(g, ref.to(x.dtype), x)
        return x.masked_fill(g, 0.0)

    def timesteps(self, t_tok: torch.Tensor, given: torch.Tensor | None) -> torch.Tensor:
        """Per-token timesteps: 0 at the clean tokens for ``in_place``, unchanged otherwise."""
        if self.mode != "in_place" or given is None:
            return t_tok
        return t_tok.masked_fill(given, 0.0)

    def embed(self, h: torch.Tensor, ref: torch.Tensor | None, given: torch.Tensor | None) -> torch.Tensor:
        """``channel_concat``: add cond_in([ref * mask, mask]) to the patch embedding h [S, L, D]."""
        if self.mode != "channel_concat" or given is None:
            return h
        g = given[..., None].to(h.dtype)
        return h + self.cond_in(torch.cat([ref.to(h.dtype) * g, g], dim=-1))

    def pooled(self, ref, given, pos, example: torch.Tensor, n_examples: int) -> torch.Tensor | None:
        """``adaln``: the mean embedded given token of each example -> [B, D] (0 for none given)."""
        if self.mode != "adaln" or given is None:
            return None
        emb = self.cond_embedder(ref) + pos  # [S, L, D]
        w = given.to(emb.dtype)[..., None]
        idx = example.clamp(min=0).reshape(-1)
        total = emb.new_zeros(n_examples, emb.shape[-1]).index_add(0, idx, (emb * w).reshape(-1, emb.shape[-1]))
        count = emb.new_zeros(n_examples).index_add(0, idx, w.reshape(-1))
        has = (count > 0).to(emb.dtype)[:, None]
        return self.cond_pool(total / count.clamp(min=1)[:, None]) * has  # [B, D]

    def context(self, ref, given, pos, example: torch.Tensor):
        """``cross_attn``: the embedded given tokens of each row as context tokens [S, K, D] and
        which tokens may read them [S, L, K] (their own example's only); None for other ways."""
        if self.mode != "cross_attn" or given is None:
            return None
        emb = self.cond_embedder(ref) + pos  # [S, L, D]
        tokens, valid = select_tokens(emb, given)
        owners, _ = select_tokens(example[..., None].to(emb.dtype), given)
        allowed = (example[:, :, None] == owners[..., 0].round().long()[:, None, :]) & valid[:, None, :]
        return tokens, allowed  # [S, K, D], [S, L, K]


# ----------------------------------------------------------------------------------------------
# Caption conditioning
# ----------------------------------------------------------------------------------------------
class TextConditioner(nn.Module):
    """Caption tokens -> hidden-size tokens (``y_embedder``) and a pooled vector (``y_pool``).

    Shapes: text [B, Lt, text_dim], text_mask [B, Lt] bool (True = real token) ->
    (tokens [B, Lt, D], pooled [B, D]).
    """

    def __init__(self, text_dim: int, hidden_size: int):
        super().__init__()
        self.text_dim = text_dim
        self.y_embedder = nn.Sequential(nn.Linear(text_dim, hidden_size), nn.GELU(approximate="tanh"),
                                        nn.Linear(hidden_size, hidden_size))
        self.y_pool = nn.Sequential(nn.Linear(text_dim, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    @property
    def whitened(self) -> bool:
        """True when the caption tokens are whitened first (:meth:`set_whitening`)."""
        return hasattr(self, "text_mean")

    @torch.no_grad()
    def set_whitening(self, mean: torch.Tensor, matrix: torch.Tensor) -> None:
        """Whiten the caption tokens before the embedders, ``(text - mean) @ matrix``, and change the
        embedders' first layers so that the function is unchanged (their inputs only are reexpressed).

        Why: a frozen sentence encoder puts words a caption must tell apart close together (in
        all-MiniLM-L6-v2, "left" and "right" are 0.7 of a typical token spread apart, "red" and
        "blue" 1.9); in whitened coordinates every direction has unit variance over the training
        captions, so a first-order optimiser moves the weak directions as fast as the strong ones
        (whitening and gradient descent: LeCun et al. 1998, "Efficient BackProp"). ``mean``
        [text_dim], ``matrix`` [text_dim, text_dim] invertible (``sora_mini.text.whitening``); saved
        with the weights as buffers (``prepare_state`` registers them when a folder has them)."""
        if self.whitened:
            raise ValueError("the caption tokens are whitened already")
        mean, matrix = mean.float(), matrix.float()
        inverse = torch.linalg.inv(matrix)  # x = x_w @ inverse + mean
        for first in (self.y_embedder[0], self.y_pool[0]):  # y = x A^T + b -> x_w (inverse A^T) + (mean A^T + b)
            weight = first.weight.float()
            first.bias.copy_(first.bias.float() + mean @ weight.T)
            first.weight.copy_((inverse @ weight.T).T)
        self.prepare_whitening()
        self.text_mean.copy_(mean)
        self.text_whitening.copy_(matrix)

    def prepare_whitening(self) -> None:
        """Register the (zero) whitening buffers, to be filled by ``set_whitening`` or a state dict."""
        if not self.whitened:
            self.register_buffer("text_mean", torch.zeros(self.text_dim))
            self.register_buffer("text_whitening", torch.zeros(self.text_dim, self.text_dim))

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor | None):
        if text.ndim != 3 or text.shape[-1] != self.text_dim:
            raise ValueError(f"text must be [batch, tokens, {self.text_dim}] (the model's text_dim), "
                             f"got {list(text.shape)}")
        if text_mask is None:
            text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        if self.whitened:
            text = (text - self.text_mean.to(text.dtype)) @ self.text_whitening.to(text.dtype)
        w = text_mask.to(text.dtype)[..., None]
        pooled = (text * w).sum(1) / w.sum(1).clamp(min=1)  # [B, text_dim]
        return self.y_embedder(text), self.y_pool(pooled), text_mask

    @staticmethod
    def rows(tokens: torch.Tensor, text_mask: torch.Tensor, examples: torch.Tensor):
        """The caption tokens of the examples in each row: [S, K, D], owners and validity [S, K].

        The real tokens of a row come first (in their order) and K is the most any row has: the
        padding of short captions and of rows with fewer examples is dropped, not attended to and
        masked (on the small mix 10 examples x 32 slots = 320 context slots a row shrink to about
        200; the result is the same, as masked slots get exactly 0 weight).
        """
        S, E = examples.shape
        Lt = tokens.shape[1]
        ex = examples.clamp(min=0).reshape(-1)
        # index_select: its backward is an index_add (advanced indexing's index_put is far slower on the CPU)
        ctx = tokens.index_select(0, ex).reshape(S, E * Lt, -1)
        owner = examples[..., None].expand(S, E, Lt).reshape(S, E * Lt)
        valid = (text_mask.index_select(0, ex).view(S, E, Lt) & (examples >= 0)[..., None]).reshape(S, E * Lt)
        keep = max(int(valid.sum(1).max()), 1)
        if keep < E * Lt:
            order = torch.argsort((~valid).to(torch.uint8), dim=1, stable=True)[:, :keep]  # real tokens first
            ctx = ctx.gather(1, order[..., None].expand(-1, -1, ctx.shape[-1]))
            owner, valid = owner.gather(1, order), valid.gather(1, order)
        return ctx, owner, valid


# ----------------------------------------------------------------------------------------------
# Packed condition inputs (a local adapter over sora_mini.patches)
# ----------------------------------------------------------------------------------------------
def pack_like(packed, latents) -> torch.Tensor:
    """Patchify per-example latents [C, t_i, h_i, w_i] into the slots of ``packed`` (same tokens kept).

    Shapes: B latents -> [S, L, C*pt*ph*pw] (0 at padding). Use it for the clean condition tokens.
    """
    from sora_mini.patches import patchify

    out = None
    for i, (z, (s, start, n)) in enumerate(zip(latents, packed.locations)):
        tok = patchify(z, packed.patch_size)[0]  # [n_full, P]
        if packed.keep is not None:
            tok = tok[packed.keep[i].to(tok.device)]
        if tok.shape[0] != n:
            raise ValueError(f"latent {i} gives {tok.shape[0]} tokens but the pack holds {n} for it: "
                             f"pass latents of the packed sizes")
        if out is None:
            out = tok.new_zeros(packed.num_sequences, packed.max_len, tok.shape[-1])
        out[s, start:start + n] = tok
    return out


def given_tokens(packed, cond_frames) -> torch.Tensor:
    """Which packed tokens lie in a clean condition frame.

    Shapes: cond_frames: B bool vectors [T_i] (latent frames, True = given) -> [S, L] bool.
    """
    pt = packed.patch_size[0] if packed.patch_size is not None else 1
    seg = packed.segment_ids
    out = torch.zeros(seg.shape, dtype=torch.bool, device=seg.device)
    for i, frames in enumerate(cond_frames):
        s, start, n = packed.locations[i]
        t = packed.coords[s, start:start + n, 0] * pt
        out[s, start:start + n] = torch.as_tensor(frames, dtype=torch.bool, device=seg.device)[t]
    return out
