"""The image DiT: official state-dict names / shapes / counts, adaLN-Zero init, parity with diffusers."""

import math

import numpy as np
import pytest
import torch

from sora_mini.models import DiT, DiT_models, dit, timestep_embedding
from sora_mini.patches import pack_latents

# Parameter counts of the official facebookresearch/DiT models at input 32 (reference 1.4, measured
# by instantiating DiT's own models.py).
OFFICIAL_PARAMS = {"DiT-S/2": 32.96e6, "DiT-B/2": 130.51e6, "DiT-L/2": 458.10e6, "DiT-XL/2": 675.13e6}
OFFICIAL_SIZES = {"S": (12, 384), "B": (12, 768), "L": (24, 1024), "XL": (28, 1152)}


def official_shapes(depth: int, D: int, p: int, input_size: int = 32, in_ch: int = 4, out_ch: int = 8) -> dict:
    """The state dict of DiT's models.py, written out from reference section 1.4."""
    n = (input_size // p) ** 2
    shapes = {
        "pos_embed": (1, n, D), "x_embedder.proj.weight": (D, in_ch, p, p), "x_embedder.proj.bias": (D,),
        "t_embedder.mlp.0.weight": (D, 256), "t_embedder.mlp.0.bias": (D,),
        "t_embedder.mlp.2.weight": (D, D), "t_embedder.mlp.2.bias": (D,),
        "y_embedder.embedding_table.weight": (1001, D),
        "final_layer.linear.weight": (p * p * out_ch, D), "final_layer.linear.bias": (p * p * out_ch,),
        "final_layer.adaLN_modulation.1.weight": (2 * D, D), "final_layer.adaLN_modulation.1.bias": (2 * D,),
    }
    for i in range(depth):
        b = f"blocks.{i}."
        shapes.update({
            b + "attn.qkv.weight": (3 * D, D), b + "attn.qkv.bias": (3 * D,),
            b + "attn.proj.weight": (D, D), b + "attn.proj.bias": (D,),
            b + "mlp.fc1.weight": (4 * D, D), b + "mlp.fc1.bias": (4 * D,),
            b + "mlp.fc2.weight": (D, 4 * D), b + "mlp.fc2.bias": (D,),
            b + "adaLN_modulation.1.weight": (6 * D, D), b + "adaLN_modulation.1.bias": (6 * D,),
        })
    return shapes


@pytest.mark.parametrize("size", list(OFFICIAL_SIZES))
@pytest.mark.parametrize("p", [2, 4, 8])
def test_official_names_shapes_and_counts(size, p):
    depth, D = OFFICIAL_SIZES[size]
    with torch.device("meta"):  # no memory, no init cost: only names and shapes matter here
        model = DiT_models[f"DiT-{size}/{p}"](input_size=32)
    got = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert got == official_shapes(depth, D, p)
    if p == 2:
        n = sum(v.numel() for v in model.state_dict().values())
        assert abs(n - OFFICIAL_PARAMS[f"DiT-{size}/2"]) < 0.005e6


def test_official_state_dict_loads_strict():
    shapes = official_shapes(12, 384, 2)
    state = {k: torch.randn(s) for k, s in shapes.items()}
    model = dit("DiT-S/2", input_size=32)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.blocks[3].attn.qkv.weight, state["blocks.3.attn.qkv.weight"])


def test_unknown_name_lists_allowed():
    with pytest.raises(ValueError, match="DiT-XL/2"):
        dit("DiT-M/2")


def test_zero_init_outputs_exactly_zero_and_blocks_are_identity():
    model = DiT(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)
    x = torch.randn(3, 4, 8, 8)
    out = model(x, torch.tensor([1, 500, 999]), torch.tensor([0, 3, 10]))
    assert out.shape == (3, 8, 8, 8) and torch.count_nonzero(out) == 0
    h = torch.randn(3, 16, 64)
    from sora_mini.models.layers import Modulation
    assert torch.equal(model.blocks[0](h, Modulation(torch.randn(3, 64))), h)


def mae_pos_embed(dim: int, grid: int) -> np.ndarray:
    """MAE's get_2d_sincos_pos_embed, written out in numpy as the reference describes it."""
    def one_d(d, pos):
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2.0))
        out = np.einsum("m,d->md", pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    g = np.meshgrid(np.arange(grid, dtype=np.float64), np.arange(grid, dtype=np.float64))  # w first
    return np.concatenate([one_d(dim // 2, g[0]), one_d(dim // 2, g[1])], axis=1)


def test_pos_embed_matches_mae():
    model = DiT(input_size=16, patch_size=2, hidden_size=64, depth=1, num_heads=4)
    ref = mae_pos_embed(64, 8)
    assert np.allclose(model.pos_embed[0].numpy(), ref, atol=1e-6)
    assert abs(ref[1, 0] - math.sin(1.0)) < 1e-9  # token (row 0, col 1): first half encodes the column


def test_timestep_embedding_is_cos_first_and_matches_diffusers():
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0.0, 1.0, 37.5, 999.0])
    ours = timestep_embedding(t, 256)
    ref = get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)
    assert torch.allclose(ours, ref, atol=1e-5)
    assert torch.allclose(ours[0, :128], torch.ones(128))  # cos(0) first


def _to_diffusers(state: dict, depth: int) -> dict:
    """DiT state dict -> diffusers DiTTransformer2DModel (scripts/convert_dit_to_diffusers.py mapping)."""
    out = {"pos_embed.proj.weight": state["x_embedder.proj.weight"], "pos_embed.proj.bias": state["x_embedder.proj.bias"],
           "proj_out_1.weight": state["final_layer.adaLN_modulation.1.weight"],
           "proj_out_1.bias": state["final_layer.adaLN_modulation.1.bias"],
           "proj_out_2.weight": state["final_layer.linear.weight"], "proj_out_2.bias": state["final_layer.linear.bias"]}
    for i in range(depth):
        b, d = f"blocks.{i}.", f"transformer_blocks.{i}."
        for j, name in ((0, "linear_1"), (2, "linear_2")):
            for w in ("weight", "bias"):
                out[f"{d}norm1.emb.timestep_embedder.{name}.{w}"] = state[f"t_embedder.mlp.{j}.{w}"]
        out[d + "norm1.emb.class_embedder.embedding_table.weight"] = state["y_embedder.embedding_table.weight"]
        for w in ("weight", "bias"):
            out[f"{d}norm1.linear.{w}"] = state[f"{b}adaLN_modulation.1.{w}"]
            q, k, v = state[f"{b}attn.qkv.{w}"].chunk(3, dim=0)
            out[f"{d}attn1.to_q.{w}"], out[f"{d}attn1.to_k.{w}"], out[f"{d}attn1.to_v.{w}"] = q, k, v
            out[f"{d}attn1.to_out.0.{w}"] = state[f"{b}attn.proj.{w}"]
            out[f"{d}ff.net.0.proj.{w}"] = state[f"{b}mlp.fc1.{w}"]
            out[f"{d}ff.net.2.{w}"] = state[f"{b}mlp.fc2.{w}"]
    return out


def test_forward_matches_diffusers_dit_after_conversion():
    """With the two known convention differences patched (reference 1.7), outputs agree."""
    from diffusers import DiTTransformer2DModel

    torch.manual_seed(0)
    ours = DiT(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10).eval()
    for p in ours.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    ref = DiTTransformer2DModel(num_attention_heads=4, attention_head_dim=16, in_channels=4, out_channels=8, num_layers=2,
                                sample_size=8, patch_size=2, num_embeds_ada_norm=10).eval()
    ref.load_state_dict(_to_diffusers(ours.state_dict(), 2), strict=True)
    for blk in ref.transformer_blocks:
        blk.norm1.emb.time_proj.downscale_freq_shift = 0
        for norm in (blk.norm2, blk.norm3):  # the MLP-side LayerNorm (norm3 in diffusers 0.42)
            if norm is not None:
                norm.eps = 1e-6
    x, t, y = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.tensor([1, 10])
    with torch.no_grad():
        a = ours(x, t, y)
        b = ref(x, timestep=t, class_labels=y).sample
    assert torch.allclose(a, b, atol=1e-5), float((a - b).abs().max())


def test_cfg_guides_only_the_chosen_channels():
    model = DiT(input_size=8, patch_size=2, hidden_size=64, depth=1, num_heads=4, num_classes=10)
    for p in model.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    x = torch.randn(2, 4, 8, 8)
    out = model.forward_with_cfg(torch.cat([x[:1], x[:1]]), torch.tensor([5, 5]), torch.tensor([2, 10]), 4.0)
    raw = model(torch.cat([x[:1], x[:1]]), torch.tensor([5, 5]), torch.tensor([2, 10]))
    cond, uncond = raw[:1, :4], raw[1:, :4]
    assert torch.allclose(out[0, :4], (uncond + 4.0 * (cond - uncond))[0], atol=1e-5)
    assert torch.equal(out[:, 4:], raw[:, 4:])  # learned-sigma channels are not guided


def test_packed_images_of_two_sizes_match_plain():
    torch.manual_seed(1)
    model = DiT(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10).eval()
    for p in model.parameters():
        if p.requires_grad:
            p.data.normal_(0, 0.05)
    imgs = [torch.randn(4, 1, 8, 8), torch.randn(4, 1, 4, 6), torch.randn(4, 1, 8, 8)]
    packed = pack_latents(imgs, (1, 2, 2), max_len=40)
    t, y = torch.tensor([10.0, 400.0, 900.0]), torch.tensor([1, 2, 3])
    outs, _ = packed.unpatchify(model.forward_packed(packed, t, y))
    for i in (0, 2):  # the trained size: same as the plain forward
        plain = model(imgs[i][:, 0][None], t[i:i + 1], y[i:i + 1])[0]
        assert torch.allclose(outs[i][:, 0], plain, atol=1e-5)
    assert outs[1].shape == (8, 1, 4, 6)


def test_bad_input_lists_what_is_allowed():
    model = DiT(input_size=8, patch_size=2, hidden_size=64, depth=1, num_heads=4, num_classes=10)
    with pytest.raises(ValueError, match=r"\[B, 4, 8, 8\]"):
        model(torch.randn(1, 3, 8, 8), torch.tensor([1]), torch.tensor([1]))
    with pytest.raises(ValueError, match="input_size=8"):
        model(torch.randn(1, 4, 16, 16), torch.tensor([1]), torch.tensor([1]))

