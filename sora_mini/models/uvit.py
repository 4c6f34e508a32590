"""U-ViT: a ViT where the timestep, the class / caption and the clean frames are all tokens, with
long skip connections from shallow to deep blocks (concatenate, then linear).

Shapes: plain ``forward(x [B, C, T, H, W], t [B]) -> [B, C, T, H, W]``; packed
``forward_packed(packed, t [B]) -> [S, L, C*pt*ph*pw]``. Extra tokens (time, label, caption) are
appended after each example's patch tokens and dropped at the output.
Bao et al. 2023, "All are Worth Words: A ViT Backbone for Diffusion Models" (arXiv 2209.12152);
baofff/U-ViT ``libs/uvit.py``. Differences: 3D sin-cos positions for the patches (any size; the
original learns a table for one size), a learned embedding per extra-token slot, no output conv.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import Mlp
from torch import nn

from sora_mini.diffusion.objective import DIT_TIMESTEP_MAX, check_model_timesteps
from sora_mini.models.attention import full_attention
from sora_mini.models.conditioning import row_examples
from sora_mini.models.configs import UViTConfig, resolve_config
from sora_mini.models.layers import Attention, timestep_embedding
from sora_mini.patches import (
    PackedBatch,
    patch_grid,
    patchify,
    sincos_3d,
    unpatchify,
)
from sora_mini.pretrained import PretrainedMixin


class UViTBlock(nn.Module):
    """Pre-LN block; an out-block first merges its skip: ``x = skip_linear(cat([x, skip]))``.

    Shapes: x [S, L, D] (skip [S, L, D]) -> [S, L, D].
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = False, skip: bool = False):
        super().__init__()
        self.skip_linear = nn.Linear(2 * dim, dim) if skip else None
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, attend, skip: torch.Tensor | None = None) -> torch.Tensor:
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))  # [S, L, 2D] -> [S, L, D]
        x = x + attend(self.attn, self.norm1(x))
        return x + self.mlp(self.norm2(x))


class UViT(PretrainedMixin, nn.Module):
    """U-ViT over spacetime patches; depth//2 in-blocks, a mid-block, depth//2 out-blocks.

    ``UViT(config: UViTConfig | None = None, **fields)``; timesteps on DiT's 0..1000 scale.
    """

    config_class = UViTConfig
    timestep_range = (0.0, DIT_TIMESTEP_MAX)

    def __init__(self, config: UViTConfig | None = None, **fields):
        super().__init__()
        self.config = c = resolve_config(UViTConfig, config, fields)
        in_channels, hidden_size, depth, num_heads = c.in_channels, c.hidden_size, c.depth, c.num_heads
        mlp_ratio, qkv_bias, num_classes, text_dim = c.mlp_ratio, c.qkv_bias, c.num_classes, c.text_dim
        self.in_channels, self.patch_size, self.hidden_size = in_channels, c.patch_size, hidden_size
        self.frame_cond, self.num_classes, self.max_text_tokens = c.frame_cond, num_classes, c.max_text_tokens
        pt, ph, pw = self.patch_size
        self.patch_dim = in_channels * pt * ph * pw
        D = hidden_size
        self.patch_embed = nn.Linear(self.patch_dim, D)
        self.time_embed = (nn.Sequential(nn.Linear(D, 4 * D), nn.SiLU(), nn.Linear(4 * D, D))
                           if c.mlp_time_embed else nn.Identity())
        self.label_emb = nn.Embedding(num_classes, D) if num_classes else None
        self.context_embed = nn.Linear(text_dim, D) if text_dim else None
        self.extras = 1 + int(num_classes > 0) + (c.max_text_tokens if text_dim else 0)
        self.extras_pos = nn.Parameter(torch.zeros(1, self.extras, D))  # learned, one per extra-token slot
        self.in_blocks = nn.ModuleList(UViTBlock(D, num_heads, mlp_ratio, qkv_bias) for _ in range(depth // 2))
        self.mid_block = UViTBlock(D, num_heads, mlp_ratio, qkv_bias)
        self.out_blocks = nn.ModuleList(UViTBlock(D, num_heads, mlp_ratio, qkv_bias, skip=True)
                                        for _ in range(depth // 2))
        self.norm = nn.LayerNorm(D)
        self.decoder_pred = nn.Linear(D, self.patch_dim)
        nn.init.trunc_normal_(self.extras_pos, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def _extra_tokens(self, t, y, text, text_mask):
        """Per example: [time | label | caption tokens] -> tokens [B, E, D], valid [B, E]."""
        B = t.shape[0]
        parts = [self.time_embed(timestep_embedding(t, self.hidden_size).to(self.patch_embed.weight.dtype))[:, None]]
        valid = [torch.ones(B, 1, dtype=torch.bool, device=t.device)]
        if self.label_emb is not None:
            if y is None:
                raise ValueError(f"this U-ViT is class-conditional (num_classes={self.num_classes}): pass y [B]")
            parts.append(self.label_emb(y)[:, None]), valid.append(valid[0])
        if self.context_embed is not None:
            if text is None or text.ndim != 3 or text.shape[1] > self.max_text_tokens:
                raise ValueError(f"this U-ViT takes captions: pass text [B, Lt <= {self.max_text_tokens}, "
                                 f"{self.context_embed.in_features}]")
            pad = self.max_text_tokens - text.shape[1]
            ctx = nn.functional.pad(self.context_embed(text.to(self.patch_embed.weight.dtype)), (0, 0, 0, pad))
            tm = torch.ones(text.shape[:2], dtype=torch.bool, device=t.device) if text_mask is None else text_mask
            parts.append(ctx), valid.append(nn.functional.pad(tm, (0, pad)))
        return torch.cat(parts, 1) + self.extras_pos, torch.cat(valid, 1)

    def _run(self, h, ids):
        """Blocks with long skips (LIFO: the first in-block feeds the last out-block)."""
        attend = full_attention(ids)
        skips = []
        for blk in self.in_blocks:
            h = blk(h, attend)
            skips.append(h)
        h = self.mid_block(h, attend)
        for blk in self.out_blocks:
            h = blk(h, attend, skips.pop())
        return self.decoder_pred(self.norm(h))

    def forward(self, x, t, y=None, *, text=None, text_mask=None, cond=None, cond_frames=None):
        """Shapes: x [B, C, T, H, W], t [B] (0..999), y [B], text [B, Lt, text_dim],
        cond [B, C, T, H, W] clean frames at cond_frames [B, T] -> [B, C, T, H, W]."""
        if x.ndim != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"x has shape {list(x.shape)}; this U-ViT takes [B, {self.in_channels}, T, H, W] with "
                             f"T, H, W multiples of the patch {self.patch_size}")
        grid = patch_grid(x.shape, self.patch_size)
        tokens, coords = patchify(x, self.patch_size)  # [B, N, P], [N, 3]
        if cond_frames is not None:
            if self.frame_cond == "none" or cond is None or cond.shape != x.shape:
                raise ValueError("clean frames need frame_cond='token_concat' and cond shaped like x")
            given = cond_frames.to(torch.bool)[:, coords[:, 0] * self.patch_size[0]]  # [B, N]
            tokens = torch.where(given[..., None], patchify(cond, self.patch_size)[0], tokens)
        B, N = tokens.shape[:2]
        t = check_model_timesteps(torch.as_tensor(t, dtype=torch.float32, device=x.device), self.timestep_range, "UViT")
        t = t.expand(B) if t.ndim == 0 else t.reshape(B)
        extra, valid = self._extra_tokens(t, y, text, text_mask)  # [B, E, D], [B, E]
        h = self.patch_embed(tokens) + sincos_3d(coords, self.hidden_size).to(tokens.dtype)  # [B, N, D]
        h = torch.cat([h, extra], dim=1)  # [B, N + E, D]
        ids = torch.cat([torch.zeros(B, N, dtype=torch.long, device=x.device), (~valid).long() * -1], dim=1)
        out = self._run(h, ids)[:, :N]  # drop the extra tokens
        return unpatchify(out, grid, self.patch_size)

    def forward_packed(self, packed: PackedBatch, t, y=None, *, x=None, text=None, text_mask=None,
                       cond=None, cond_given=None):
        """Shapes: packed tokens / x [S, L, P], t [B] per example -> [S, L, P]; extras of the
        examples of each row are appended to that row."""
        x = packed.tokens if x is None else x
        if x.shape[-1] != self.patch_dim:
            raise ValueError(f"packed tokens of width {x.shape[-1]}; this U-ViT takes {self.patch_dim}")
        if cond_given is not None:
            x = torch.where(cond_given[..., None], cond, x)
        seg = packed.segment_ids.masked_fill(packed.padding, -1)  # [S, L]
        t = check_model_timesteps(torch.as_tensor(t, dtype=torch.float32, device=x.device), self.timestep_range, "UViT")
        extra, valid = self._extra_tokens(t, y, text, text_mask)  # [B, E, D]
        rows = row_examples(seg)  # [S, R]
        S, R = rows.shape
        E = extra.shape[1]
        ex_tok = extra[rows.clamp(min=0)].reshape(S, R * E, -1)  # [S, R*E, D]
        ex_ids = torch.where(valid[rows.clamp(min=0)] & (rows >= 0)[..., None], rows[..., None], -1).reshape(S, R * E)
        h = self.patch_embed(x) + sincos_3d(packed.coords, self.hidden_size).to(x.dtype)
        out = self._run(torch.cat([h, ex_tok], 1), torch.cat([seg, ex_ids], 1))
        return out[:, : x.shape[1]]
