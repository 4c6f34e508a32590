"""Video DiT on spacetime patch tokens: plain batches or packed sequences, full or factorized
attention, frame conditioning in five ways and caption conditioning in two.

Shapes: plain ``forward(x [B, C, T, H, W], t [B] or [B, T]) -> [B, C_out, T, H, W]``; packed
``forward_packed(packed: PackedBatch, t [B] or [S, L]) -> [S, L, C_out*pt*ph*pw]``, also reached as
``forward(packed, t, ...)``. Timesteps are on DiT's 0..1000 scale (the model declares
``timestep_range``; ``sora_mini.diffusion`` converts a flow-matching t in [0, 1] for it). Built as
``VideoDiT(VideoDiTConfig(...))`` or with keywords.
Peebles & Xie 2023 (DiT); Sora technical report 2024 (spacetime patches); Latte (Ma et al. 2024)
for factorized attention; VDT (Lu et al. 2023) and Open-Sora 1.x / 2.0 for frame conditioning.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from sora_mini.diffusion.objective import DIT_TIMESTEP_MAX, check_model_timesteps
from sora_mini.models.attention import attention_plans, block_kinds
from sora_mini.models.conditioning import (
    FRAME_CONDITIONING,
    FrameConditioner,
    TextConditioner,
    make_context,
    row_examples,
)
from sora_mini.models.configs import VideoDiTConfig, resolve_config
from sora_mini.models.layers import (
    DiTBlock,
    FinalLayer,
    Modulation,
    TimestepEmbedder,
    init_dit_weights,
)
from sora_mini.models.mmdit import JointBlock
from sora_mini.patches import (
    PackedBatch,
    patch_grid,
    patchify,
    segment_attention_mask,
    sincos_3d,
    unpatchify,
)
from sora_mini.pretrained import PretrainedMixin


@dataclass
class TokenBatch:
    """The tokens one forward pass works on, from a plain batch or a pack (S rows of L tokens, B examples).

    x [S, L, P] noisy patch values; coords [S or 1, L, 3] long (t, y, x) in patch units;
    example [S, L] long, the example of every token (-1 at padding); num_examples B.
    segment_ids [S, L] long (-1 at padding) for packed rows, None for a plain batch (one example
    per row, nothing padded). Exactly one of t_row [B] (one timestep per example) and t_tok [S, L]
    (per token). ref [S, L, P] clean condition tokens, read where given [S, L] bool is True (both
    or neither). text [B, Lt, text_dim] and text_mask [B, Lt] bool (True = real token) or None.
    grid (nt, nh, nw) of a plain t-major batch (factorized attention's fast path) or None.
    """

    x: torch.Tensor
    coords: torch.Tensor
    example: torch.Tensor
    num_examples: int
    segment_ids: torch.Tensor | None = None
    t_row: torch.Tensor | None = None
    t_tok: torch.Tensor | None = None
    ref: torch.Tensor | None = None
    given: torch.Tensor | None = None
    text: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None
    grid: tuple[int, int, int] | None = None


class VideoDiT(PretrainedMixin, nn.Module):
    """A diffusion transformer over spacetime latent patches (see the module docstring).

    ``VideoDiT(config: VideoDiTConfig | None = None, **fields)``: ``attention`` "full" (default) or
    "factorized"; ``frame_cond`` "none" (default), "adaln", "cross_attn", "token_concat",
    "in_place" or "channel_concat"; ``text_cond`` "none" (default), "cross_attn" or "joint" (with
    ``text_dim``). Timesteps on DiT's 0..1000 scale.
    """

    config_class = VideoDiTConfig
    timestep_range = (0.0, DIT_TIMESTEP_MAX)

    def __init__(self, config: VideoDiTConfig | None = None, **fields):
        super().__init__()
        self.config = c = resolve_config(VideoDiTConfig, config, fields)
        in_channels, hidden_size, depth, num_heads, mlp_ratio = (c.in_channels, c.hidden_size, c.depth,
                                                                 c.num_heads, c.mlp_ratio)
        attention, frame_cond, text_cond = c.attention, c.frame_cond, c.text_cond
        self.in_channels, self.patch_size, self.hidden_size = in_channels, c.patch_size, hidden_size
        self.out_channels = in_channels * 2 if c.learn_sigma else in_channels
        self.attention, self.frame_cond, self.text_cond = attention, frame_cond, text_cond
        vol = self.patch_size[0] * self.patch_size[1] * self.patch_size[2]
        self.patch_dim = in_channels * vol
        self.x_embedder = nn.Linear(self.patch_dim, hidden_size)  # = Conv3d(k = s = patch) on (c pt ph pw)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.frame_conditioner = FrameConditioner(frame_cond, self.patch_dim, hidden_size)
        if text_cond != "none":
            self.text_conditioner = TextConditioner(c.text_dim, hidden_size)
        self.kinds = block_kinds(attention, depth)
        cross = frame_cond == "cross_attn" or text_cond == "cross_attn"
        if text_cond == "joint":
            self.blocks = nn.ModuleList(JointBlock(hidden_size, num_heads, mlp_ratio) for _ in range(depth))
        else:  # factorized: cross-attention in the spatial blocks only, as Latte-1 / diffusers
            self.blocks = nn.ModuleList(
                DiTBlock(hidden_size, num_heads, mlp_ratio, cross_attention=cross and kind != "temporal")
                for kind in self.kinds)
        self.final_layer = FinalLayer(hidden_size, self.out_channels * vol)
        init_dit_weights(self)
        self.frame_conditioner.zero_init()

    # ------------------------------------------------------------------------------------------
    # Plain batches
    # ------------------------------------------------------------------------------------------
    def prepare_state(self, state: dict) -> None:
        """Before loading ``state``: register the caption whitening buffers when it has them
        (``TextConditioner.set_whitening``; a model trained without it has none)."""
        if "text_conditioner.text_mean" in state and hasattr(self, "text_conditioner"):
            self.text_conditioner.prepare_whitening()

    def forward(self, x: torch.Tensor | PackedBatch, t: torch.Tensor, /, **kwargs) -> torch.Tensor:
        """:meth:`forward_video` for a batch of videos ``x [B, C, T, H, W]``; :meth:`forward_packed`
        for a PackedBatch ``x`` (its noisy tokens are then the keyword ``x=``). One entry for both,
        because a DDP wrapper averages the gradients of calls through ``forward`` only (the
        text-to-video loss calls ``model(packed, t, x=..., ...)``)."""
        if isinstance(x, PackedBatch):
            return self.forward_packed(x, t, **kwargs)
        return self.forward_video(x, t, **kwargs)

    def forward_video(self, x: torch.Tensor, t: torch.Tensor, *, cond: torch.Tensor | None = None,
                      cond_frames: torch.Tensor | None = None, cond_mask: torch.Tensor | None = None,
                      text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predict for a batch of equal-size videos.

        Shapes: x [B, C, T, H, W]; t [B] or [B, T] (per frame); cond [B, C, T, H, W] clean latents
        read only at cond_frames [B, T] bool (True = a given clean frame) or, per position (spatial
        inpainting, as ``forward_packed``'s cond_given), at cond_mask [B, T, H, W] bool, whole
        patches given or not; text [B, Lt, text_dim], text_mask [B, Lt] bool -> [B, C_out, T, H, W].
        """
        self._check_video(x, "x")
        B, _, T = x.shape[:3]
        grid = patch_grid(x.shape, self.patch_size)
        tokens, coords = patchify(x, self.patch_size)  # [B, N, P], [N, 3]
        N, pt = tokens.shape[1], self.patch_size[0]
        ref = given = None
        if cond_mask is not None:
            if cond_frames is not None:
                raise ValueError("pass cond_frames ([B, T], whole frames) or cond_mask ([B, T, H, W], per "
                                 "position), not both")
            cond_frames = self._check_cond_mask(cond_mask, x)  # [B, T, nh, nw] one flag per patch
        if cond_frames is not None or cond is not None:
            self._check_frame_cond(cond, cond_frames, x)
            ref = patchify(cond, self.patch_size)[0]  # [B, N, P]
            if cond_frames.ndim == 4:  # per patch (from cond_mask)
                given = cond_frames[:, coords[:, 0] * pt, coords[:, 1], coords[:, 2]]  # [B, N]
            else:
                given = cond_frames.to(torch.bool)[:, coords[:, 0] * pt]  # [B, N]
        t = self._timesteps(t, x)
        t = t.expand(B) if t.ndim == 0 else t  # one number for the whole batch
        if t.shape not in ((B,), (B, T)):
            raise ValueError(f"t must be [B] = [{B}] or per frame [B, T] = [{B}, {T}], got {list(t.shape)}")
        t_tok = t[:, coords[:, 0] * pt] if t.ndim == 2 else None  # [B, N]
        if self.frame_cond == "in_place" and given is not None:
            t_tok = self.frame_conditioner.timesteps(t[:, None].expand(B, N) if t_tok is None else t_tok, given)
        example = torch.arange(B, device=x.device)[:, None].expand(B, N)
        out = self._forward_tokens(TokenBatch(tokens, coords[None], example, B, t_row=t if t_tok is None else None,
                                              t_tok=t_tok, ref=ref, given=given, text=text, text_mask=text_mask,
                                              grid=grid))
        return unpatchify(out, grid, self.patch_size)  # [B, C_out, T, H, W]

    # ------------------------------------------------------------------------------------------
    # Packed sequences
    # ------------------------------------------------------------------------------------------
    def forward_packed(self, packed: PackedBatch, t: torch.Tensor, *, x: torch.Tensor | None = None,
                       cond: torch.Tensor | None = None, cond_given: torch.Tensor | None = None,
                       text: torch.Tensor | None = None, text_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Predict for videos of any sizes packed into rows (Patch n' Pack).

        Shapes: packed.tokens / x [S, L, P] (x: the noisy tokens, default packed.tokens); t [B] per
        example or [S, L] per token; cond [S, L, P] clean tokens read where cond_given [S, L] is
        True; text [B, Lt, text_dim] per example -> [S, L, C_out*pt*ph*pw] (0-padding slots: ignore).
        """
        x = packed.tokens if x is None else x
        patch = self.patch_size if packed.patch_size is None else tuple(packed.patch_size)
        if patch != self.patch_size or x.shape[-1] != self.patch_dim:
            raise ValueError(f"packed tokens of width {x.shape[-1]} with patch {patch}; this "
                             f"model takes patch {self.patch_size} over {self.in_channels} channels = width "
                             f"{self.patch_dim}")
        seg = packed.segment_ids.masked_fill(packed.padding, -1)
        n_examples = packed.num_examples
        t = self._timesteps(t, x)
        if t.shape == (n_examples,):
            t_tok = t[seg.clamp(min=0)]  # [S, L]
        elif t.shape == seg.shape:
            t_tok = t
        else:
            raise ValueError(f"t must be per example [{n_examples}] or per token {list(seg.shape)}, got {list(t.shape)}")
        if (cond is None) != (cond_given is None):
            raise ValueError("pass both cond (clean tokens [S, L, P]) and cond_given ([S, L] bool), or neither")
        if cond_given is not None and self.frame_cond == "none":
            raise ValueError(f"this model was built with frame_cond='none'; build it with one of "
                             f"{', '.join(FRAME_CONDITIONING[1:])} to condition on frames")
        given = None if cond_given is None else cond_given.to(torch.bool) & (seg >= 0)
        t_tok = self.frame_conditioner.timesteps(t_tok, given)
        return self._forward_tokens(TokenBatch(x, packed.coords, seg, n_examples, segment_ids=seg, t_tok=t_tok,
                                               ref=cond, given=given, text=text, text_mask=text_mask))

    # ------------------------------------------------------------------------------------------
    # Shared token path
    # ------------------------------------------------------------------------------------------
    def _forward_tokens(self, b: TokenBatch) -> torch.Tensor:
        """The shared token path: TokenBatch -> [S, L, C_out * patch volume]."""
        D, fc, x, seg, example, n_ex = self.hidden_size, self.frame_conditioner, b.x, b.segment_ids, b.example, b.num_examples
        dtype = self.x_embedder.weight.dtype
        pos = sincos_3d(b.coords, D).to(dtype)  # [S|1, L, D]
        h = self.x_embedder(fc.tokens(x, b.ref, b.given)) + pos  # [S, L, D]
        h = fc.embed(h, b.ref, b.given)
        extra = fc.pooled(b.ref, b.given, pos, example, n_ex)  # [B, D] or None
        parts, joint = [], None
        if self.text_cond != "none":
            if b.text is None:
                raise ValueError(f"this model was built with text_cond={self.text_cond!r}: pass text "
                                 f"[B, Lt, {self.text_conditioner.text_dim}] (and text_mask [B, Lt])")
            if b.text.shape[0] != n_ex:
                raise ValueError(f"text has {b.text.shape[0]} captions for {n_ex} videos: pass one per video")
            tokens, pooled, tmask = self.text_conditioner(b.text.to(dtype), b.text_mask)
            extra = pooled if extra is None else extra + pooled
            rows = row_examples(seg) if seg is not None else torch.arange(x.shape[0], device=x.device)[:, None]
            ctx, owner, valid = TextConditioner.rows(tokens, tmask, rows)  # [S, K, D], [S, K], [S, K]
            if self.text_cond == "cross_attn":
                parts.append((ctx, (example[:, :, None] == owner[:, None, :]) & valid[:, None, :]))
            else:
                joint = (ctx, owner, valid)
        elif b.text is not None:
            raise ValueError("this model was built with text_cond='none'; build it with text_cond='cross_attn' "
                             "or 'joint' (and text_dim) to condition on captions")
        frame_part = fc.context(b.ref, b.given, pos, example)
        if frame_part is not None:
            parts.append(frame_part)
        context = make_context(parts)
        mod = self._modulation(b, extra)
        plans = attention_plans(self.attention, b.coords.expand(x.shape[0], -1, -1), seg, b.grid)
        if joint is None:
            for block, kind in zip(self.blocks, self.kinds):
                h = block(h, mod, plans[kind], context)
        else:
            h = self._joint_blocks(h, mod, joint, b, extra)
        return self.final_layer(h, mod)  # [S, L, C_out * patch volume]

    def _modulation(self, b: TokenBatch, extra) -> Modulation:
        """One conditioning row per video (plain, one timestep) or per distinct (example, timestep)."""
        if b.t_tok is None:  # plain batch, one timestep per video: no per-token gather
            c = self.t_embedder(b.t_row)
            return Modulation(c if extra is None else c + extra)
        ex = b.example.clamp(min=0)
        pairs = torch.stack([ex.to(torch.float64), b.t_tok.to(torch.float64)], dim=-1).reshape(-1, 2)
        rows, index = torch.unique(pairs, dim=0, return_inverse=True)  # [K, 2], [S*L]
        c = self.t_embedder(rows[:, 1].float())  # [K, D]
        if extra is not None:
            c = c + extra[rows[:, 0].long()]
        return Modulation(c, index.view(b.example.shape))

    def _joint_blocks(self, h, mod, joint, b: TokenBatch, extra):
        """MMDiT: caption tokens modulated by their example's (noisy) timestep, one joint softmax."""
        ctx, owner, valid = joint
        t_row = b.t_row
        if t_row is None:  # the example's timestep = the largest over its tokens (clean ones have 0)
            t_row = b.t_tok.new_zeros(b.num_examples).scatter_reduce(
                0, b.example.clamp(min=0).reshape(-1), b.t_tok.reshape(-1), reduce="amax", include_self=False)
        c = self.t_embedder(t_row)
        mod_c = Modulation(c if extra is None else c + extra, owner.clamp(min=0))
        mask = None
        if b.segment_ids is not None or not bool(valid.all()):
            ids_x = b.example if b.segment_ids is None else b.segment_ids
            mask = segment_attention_mask(torch.cat([ids_x, owner.masked_fill(~valid, -1)], dim=1))
        for block in self.blocks:
            h, ctx = block(h, mod, ctx, mod_c, mask)
        return h

    def _timesteps(self, t, like: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, device=like.device, dtype=torch.float32)
        return check_model_timesteps(t, self.timestep_range, "VideoDiT")

    # ------------------------------------------------------------------------------------------
    # Input checks
    # ------------------------------------------------------------------------------------------
    def allowed_input(self) -> str:
        pt, ph, pw = self.patch_size
        return (f"[B, {self.in_channels}, T, H, W] with T a multiple of {pt}, H of {ph} and W of {pw} "
                f"(in_channels={self.in_channels}, patch_size={self.patch_size})")

    def _check_video(self, x: torch.Tensor, name: str) -> None:
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"{name} has shape {list(x.shape)}; this model takes {self.allowed_input()}")

    def _check_frame_cond(self, cond, cond_frames, x) -> None:
        if self.frame_cond == "none":
            raise ValueError(f"this model was built with frame_cond='none'; build it with one of "
                             f"{', '.join(FRAME_CONDITIONING[1:])} to condition on frames")
        if cond is None or cond_frames is None:
            raise ValueError("pass both cond (clean latents like x) and cond_frames ([B, T] bool), or neither")
        if cond.shape != x.shape:
            raise ValueError(f"cond has shape {list(cond.shape)} but x has {list(x.shape)}; they must match")
        B, T, pt = x.shape[0], x.shape[2], self.patch_size[0]
        if cond_frames.ndim == 4:  # per patch, checked by _check_cond_mask
            return
        if tuple(cond_frames.shape) != (B, T):
            raise ValueError(f"cond_frames must be [B, T] = [{B}, {T}] bool, got {list(cond_frames.shape)}")
        if pt > 1 and bool((cond_frames.view(B, T // pt, pt).float().std(-1, unbiased=False) > 0).any()):
            raise ValueError(f"condition frames must fill whole temporal patches of {pt} frames")

    def _check_cond_mask(self, cond_mask, x) -> torch.Tensor:
        """cond_mask [B, T, H, W] bool -> one flag per patch [B, T, H/ph, W/pw] (repeated over pt)."""
        B, _, T, H, W = x.shape
        pt, ph, pw = self.patch_size
        if tuple(cond_mask.shape) != (B, T, H, W):
            raise ValueError(f"cond_mask must be [B, T, H, W] = [{B}, {T}, {H}, {W}] bool (one flag per latent "
                             f"position), got {list(cond_mask.shape)}")
        blocks = rearrange(cond_mask.to(torch.bool), "b (t a) (h p) (w q) -> b t h w (a p q)", a=pt, p=ph, q=pw)
        if bool((blocks.any(-1) != blocks.all(-1)).any()):
            raise ValueError(f"cond_mask must give or withhold whole patches of {self.patch_size} latent positions")
        return blocks[..., 0].repeat_interleave(pt, dim=1)  # [B, T, nh, nw]
