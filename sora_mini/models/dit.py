"""The image DiT, parameter for parameter as facebookresearch/DiT, and the registry of named sizes.

Shapes: ``DiT(config)(x [B, C, H, W], t [B] (0..1000, DiT's scale), y [B] long) -> [B, C_out, H, W]``
(C_out = 2C with learned sigma). State-dict names and shapes match the official checkpoints, so
``DiT_models["DiT-XL/2"]().load_state_dict(torch.load("DiT-XL-2-256x256.pt", weights_only=True), strict=True)`` works;
``save_pretrained`` / ``from_pretrained`` store config and weights (``sora_mini.pretrained``).
``forward_packed`` runs several images of different sizes packed into rows (NaViT).
Peebles & Xie 2023, "Scalable Diffusion Models with Transformers" (arXiv 2212.09748).
"""

from __future__ import annotations

import torch
from einops import rearrange
from timm.layers import PatchEmbed
from torch import nn

from sora_mini.diffusion.objective import DIT_TIMESTEP_MAX, check_model_timesteps
from sora_mini.models.attention import full_attention
from sora_mini.models.configs import DiTConfig, resolve_config
from sora_mini.models.layers import (
    DiTBlock,
    FinalLayer,
    LabelEmbedder,
    Modulation,
    TimestepEmbedder,
    init_dit_weights,
)
from sora_mini.patches import PackedBatch, grid_coords, sincos_1d
from sora_mini.pretrained import PretrainedMixin


def sincos_2d(coords_yx: torch.Tensor, dim: int) -> torch.Tensor:
    """MAE / DiT 2D sin-cos: [1D(x) | 1D(y)], each [sin | cos] (the first half is the column).

    Shapes: coords_yx [..., 2] (row, column) -> [..., dim] float32.
    """
    if dim % 4:
        raise ValueError(f"2D sin-cos width {dim} must be a multiple of 4")
    return torch.cat([sincos_1d(coords_yx[..., 1], dim // 2), sincos_1d(coords_yx[..., 0], dim // 2)], dim=-1)


class DiT(PretrainedMixin, nn.Module):
    """Class-conditional image DiT with adaLN-Zero blocks (official names: see reference 1.4).

    ``DiT(config: DiTConfig | None = None, **fields)``; timesteps on DiT's 0..1000 scale.
    """

    config_class = DiTConfig
    timestep_range = (0.0, DIT_TIMESTEP_MAX)

    def __init__(self, config: DiTConfig | None = None, **fields):
        super().__init__()
        self.config = c = resolve_config(DiTConfig, config, fields)
        input_size, patch_size, in_channels, hidden_size = c.input_size, c.patch_size, c.in_channels, c.hidden_size
        num_heads, learn_sigma = c.num_heads, c.learn_sigma
        self.in_channels, self.patch_size, self.input_size = in_channels, patch_size, input_size
        self.out_channels = in_channels * 2 if learn_sigma else in_channels
        self.num_heads, self.hidden_size = num_heads, hidden_size
        self.x_embedder = PatchEmbed(input_size, patch_size, in_channels, hidden_size, bias=True)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = LabelEmbedder(c.num_classes, hidden_size, c.class_dropout_prob)
        n = self.x_embedder.num_patches
        # fixed sin-cos, but a Parameter (requires_grad=False) as in DiT, so it is in the state dict
        self.pos_embed = nn.Parameter(torch.zeros(1, n, hidden_size), requires_grad=False)
        self.blocks = nn.ModuleList(DiTBlock(hidden_size, num_heads, c.mlp_ratio) for _ in range(c.depth))
        self.final_layer = FinalLayer(hidden_size, patch_size * patch_size * self.out_channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        init_dit_weights(self)
        g = self.input_size // self.patch_size
        self.pos_embed.data.copy_(sincos_2d(grid_coords((1, g, g))[:, 1:], self.hidden_size)[None])
        w = self.x_embedder.proj.weight.data  # the patch conv initialised like a Linear
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)

    def unpatchify(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """[B, h*w, p*p*C] -> [B, C, h*p, w*p] (DiT's ``nhwpqc -> nchpwq``)."""
        p = self.patch_size
        return rearrange(x, "b (h w) (p q c) -> b c (h p) (w q)", h=h, w=w, p=p, q=p)

    def _check(self, x: torch.Tensor) -> None:
        allowed = f"[B, {self.in_channels}, {self.input_size}, {self.input_size}]"
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"x has shape {list(x.shape)}; this DiT takes {allowed} (in_channels="
                             f"{self.in_channels}, input_size={self.input_size}); other sizes: forward_packed")

    def _timesteps(self, t, like: torch.Tensor) -> torch.Tensor:
        return check_model_timesteps(torch.as_tensor(t, device=like.device), self.timestep_range, "DiT")

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Shapes: x [B, C, H, W], t [B] (0..1000), y [B] long -> [B, C_out, H, W]."""
        self._check(x)
        g = self.input_size // self.patch_size
        h = self.x_embedder(x) + self.pos_embed  # [B, N, D], N = (H/p)(W/p)
        c = self.t_embedder(self._timesteps(t, x)) + self.y_embedder(y, self.training)  # [B, D]
        mod = Modulation(c)
        for block in self.blocks:
            h = block(h, mod)  # [B, N, D]
        return self.unpatchify(self.final_layer(h, mod), g, g)  # [B, C_out, H, W]

    def forward_with_cfg(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, cfg_scale: float,
                         guided_channels: int | None = None) -> torch.Tensor:
        """Classifier-free guidance on a batch [cond half ; uncond half] (y = num_classes in the 2nd).

        DiT's HEAD guides the first 3 channels only, "for exact reproducibility"; the default here
        guides all ``in_channels`` (the standard approach, as diffusers' DiTPipeline).
        """
        half = x[: len(x) // 2]
        out = self.forward(torch.cat([half, half]), t, y)
        k = self.in_channels if guided_channels is None else guided_channels
        eps, rest = out[:, :k], out[:, k:]
        cond, uncond = eps.chunk(2)
        guided = uncond + cfg_scale * (cond - uncond)
        return torch.cat([torch.cat([guided, guided]), rest], dim=1)

    def forward_packed(self, packed: PackedBatch, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Images of any size (multiples of the patch), packed into rows with a block-diagonal mask.

        Shapes: packed from ``pack_latents([C, 1, H_i, W_i] ...)`` with patch (1, p, p): tokens [S, L, C*p*p];
        t [B], y [B] per image -> [S, L, p*p*C_out] in the (c p q) order of ``packed.unpatchify``.
        Positions are the same 2D sin-cos as ``pos_embed``, computed from each token's (y, x).
        """
        p = self.patch_size
        if tuple(packed.patch_size) != (1, p, p) or packed.tokens.shape[-1] != self.in_channels * p * p:
            raise ValueError(f"packed tokens need patch (1, {p}, {p}) over {self.in_channels} channels; got patch "
                             f"{tuple(packed.patch_size)} and width {packed.tokens.shape[-1]}")
        seg = packed.segment_ids.masked_fill(packed.padding, -1)  # [S, L]
        weight = self.x_embedder.proj.weight.flatten(1)  # [D, C*p*p]: the conv as a Linear on (c p q)
        pos = sincos_2d(packed.coords[..., 1:], self.hidden_size).to(weight.dtype)
        h = nn.functional.linear(packed.tokens, weight, self.x_embedder.proj.bias) + pos  # [S, L, D]
        c = self.t_embedder(self._timesteps(t, h)) + self.y_embedder(y, self.training)  # [B, D]
        mod = Modulation(c, seg.clamp(min=0))
        attend = full_attention(seg)
        for block in self.blocks:
            h = block(h, mod, attend)
        out = self.final_layer(h, mod)  # [S, L, p*p*C_out] in (p q c) order
        return rearrange(out, "s l (p q c) -> s l (c p q)", p=p, q=p)


# ----------------------------------------------------------------------------------------------
# Named sizes (DiT paper Table 1): depth, hidden size, heads
# ----------------------------------------------------------------------------------------------
DIT_SIZES: dict[str, tuple[int, int, int]] = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16),
                                              "XL": (28, 1152, 16)}


def _make(size: str, patch: int):
    depth, hidden, heads = DIT_SIZES[size]

    def build(**kwargs) -> DiT:
        return DiT(DiTConfig(depth=depth, hidden_size=hidden, patch_size=patch, num_heads=heads), **kwargs)

    build.__name__ = f"DiT_{size}_{patch}"
    return build


DiT_models = {f"DiT-{s}/{p}": _make(s, p) for s in DIT_SIZES for p in (2, 4, 8)}


def dit(name: str, **kwargs) -> DiT:
    """Build a named size, e.g. ``dit("DiT-S/2", input_size=32)``; a clear error for unknown names."""
    if name not in DiT_models:
        raise ValueError(f"unknown DiT {name!r}; allowed: {', '.join(DiT_models)}")
    return DiT_models[name](**kwargs)
