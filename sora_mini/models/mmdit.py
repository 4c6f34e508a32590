"""MMDiT joint block: caption and video tokens attend together, each stream with its own weights.

Shapes: video x [S, L, D], caption c [S, Lt, D] -> (x [S, L, D], c [S, Lt, D]). One softmax over
the concatenation [x ; c] under a mask that keeps each packed example to its own caption.
Esser et al. 2024, "Scaling Rectified Flow Transformers" (SD3, arXiv 2403.03206), Figure 2;
Open-Sora 2.0 (Flux-style double-stream blocks).
"""

from __future__ import annotations

import torch
from torch import nn

from sora_mini.models.layers import Attention, Modulation, dit_mlp, dot_product_attention, modulate


class Stream(nn.Module):
    """The weights of one stream: adaLN-Zero modulation, qkv + output projection, MLP."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)  # only qkv and proj are used
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = dit_mlp(hidden_size, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size, bias=True))

    def pre(self, x: torch.Tensor, mod: Modulation):
        """Modulated qkv [S, N, 3, H, Dh] and the gates/shifts the second half needs."""
        params = mod.per_token(self.adaLN_modulation(mod.c)).chunk(6, dim=-1)
        h = modulate(self.norm1(x), params[0], params[1])
        qkv = self.attn.qkv(h).unflatten(-1, (3, self.attn.num_heads, -1))  # [S, N, 3, H, Dh]
        return qkv, params

    def post(self, x: torch.Tensor, attn_out: torch.Tensor, params) -> torch.Tensor:
        _, _, gate_msa, shift_mlp, scale_mlp, gate_mlp = params
        x = x + gate_msa * self.attn.proj(attn_out)
        return x + gate_mlp * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class JointBlock(nn.Module):
    """A double-stream block: ``x_stream`` for video tokens, ``c_stream`` for caption tokens.

    Shapes: x [S, L, D], c [S, Lt, D], mask [S, 1, L+Lt, L+Lt] bool or None -> same shapes.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.x_stream = Stream(hidden_size, num_heads, mlp_ratio)
        self.c_stream = Stream(hidden_size, num_heads, mlp_ratio)

    def forward(self, x, mod_x: Modulation, c, mod_c: Modulation, mask: torch.Tensor | None = None):
        qkv_x, px = self.x_stream.pre(x, mod_x)
        qkv_c, pc = self.c_stream.pre(c, mod_c)
        q, k, v = torch.cat([qkv_x, qkv_c], dim=1).permute(2, 0, 3, 1, 4)  # 3 x [S, H, L+Lt, Dh]
        out = dot_product_attention(q, k, v, mask)  # [S, H, L+Lt, Dh]
        out = out.transpose(1, 2).flatten(2)  # [S, L+Lt, D]
        L = x.shape[1]
        return self.x_stream.post(x, out[:, :L], px), self.c_stream.post(c, out[:, L:], pc)
