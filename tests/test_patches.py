"""Spacetime patches: patchify round trips, token dropping alignment, positions, bad input."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mini.patches import (
    apply_rope,
    drop_tokens,
    grid_coords,
    pack_latents,
    patch_grid,
    patchify,
    random_drop_rates,
    resolution_drop_rate,
    restore_tokens,
    rope_3d,
    sincos_1d,
    sincos_3d,
    unpatchify,
)
from sora_mini.patches.patchify import frames_fit, latent_frames, latent_grid, nearest_frame_counts

small = st.integers(1, 3)


# ----------------------------------------------------------------------------------------------
# patchify / unpatchify
# ----------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(c=small, grid=st.tuples(small, small, st.integers(1, 4)), patch=st.tuples(small, small, small),
       batch=st.sampled_from([(), (2,)]))
def test_patchify_round_trip_and_coordinates(c, grid, patch, batch):
    shape = (*batch, c, grid[0] * patch[0], grid[1] * patch[1], grid[2] * patch[2])
    z = torch.randn(shape)
    tokens, coords = patchify(z, patch)
    assert tokens.shape == (*batch, math.prod(grid), c * math.prod(patch))
    assert torch.equal(unpatchify(tokens, grid, patch), z)
    # each token holds exactly the cell of the latent that its coordinate names
    pt, ph, pw = patch
    for i in torch.randperm(coords.shape[0])[:5].tolist():
        t, y, x = coords[i].tolist()
        cell = z[..., t * pt:(t + 1) * pt, y * ph:(y + 1) * ph, x * pw:(x + 1) * pw]
        assert torch.equal(tokens[..., i, :], cell.reshape(*batch, -1))


def test_patchify_linear_equals_conv3d_patch_embedding():
    z = torch.randn(3, 4, 6, 8)
    conv = torch.nn.Conv3d(3, 16, kernel_size=(2, 2, 2), stride=(2, 2, 2))
    tokens, _ = patchify(z, (2, 2, 2))
    via_linear = tokens @ conv.weight.reshape(16, -1).T + conv.bias
    via_conv = conv(z[None])[0].flatten(1).T  # [n, 16], t-major then y, x
    torch.testing.assert_close(via_linear, via_conv, atol=1e-5, rtol=1e-5)


def test_bad_latent_sides_name_sizes_and_fix():
    with pytest.raises(ValueError, match=r"height 7 is not a multiple of the patch 2.*crop it to 6 or pad it to 8"):
        patchify(torch.randn(4, 1, 7, 8), (1, 2, 2))
    with pytest.raises(ValueError, match=r"frames 3 is not a multiple of the patch 2"):
        patch_grid((4, 3, 8, 8), (2, 2, 2))
    with pytest.raises(ValueError, match=r"\[C, t, h, w\]"):
        patchify(torch.randn(8, 8), (1, 2, 2))
    with pytest.raises(ValueError, match="do not fill the grid"):
        unpatchify(torch.randn(5, 16), (1, 2, 2), (1, 2, 2))


def test_latent_grid_follows_causal_compression():
    assert latent_grid((32, 48), 9, spatial_factor=4, temporal_factor=4, patch=(1, 2, 2)) == (3, 4, 6)
    assert latent_grid((32, 32), 1, spatial_factor=4, temporal_factor=4, patch=(1, 2, 2)) == (1, 4, 4)
    with pytest.raises(ValueError, match="1 \\+ 4n frames"):
        latent_grid((32, 32), 6, 4, 4, (1, 2, 2))


@given(st.integers(-3, 60), st.integers(1, 8))
def test_frame_count_rule_and_its_inverse(frames, k):
    """The one causal rule: 1 + (T-1)//k latent frames for T = 1 + kn; the nearest valid counts otherwise."""
    near = nearest_frame_counts(frames, k)
    assert all(frames_fit(n, k) for n in near)
    assert frames_fit(frames, k) == (frames >= 1 and (frames - 1) % k == 0)
    if frames_fit(frames, k):
        assert near == (frames,) and latent_frames(frames, k) == 1 + (frames - 1) // k
        return
    if frames >= 1:  # one below and one above, k apart, around frames
        assert near[0] < frames < near[1] == near[0] + k
    with pytest.raises(ValueError, match=" or ".join(map(str, near)) + " frames"):
        latent_frames(frames, k)


# ----------------------------------------------------------------------------------------------
# token dropping
# ----------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(grid=st.tuples(small, st.integers(1, 4), st.integers(1, 4)), rate=st.floats(0.0, 0.95),
       seed=st.integers(0, 1000))
def test_dropping_keeps_positions_with_their_tokens(grid, rate, seed):
    z = torch.randn(2, grid[0], grid[1] * 2, grid[2] * 2)
    tokens, coords = patchify(z, (1, 2, 2))
    kept, kept_coords, keep = drop_tokens(tokens, coords, rate, generator=torch.Generator().manual_seed(seed))
    n = tokens.shape[0]
    assert kept.shape[0] == max(1, math.floor(n * (1 - rate) + 1e-9)) == kept_coords.shape[0]
    assert torch.all(keep[1:] > keep[:-1])  # original order, no repeats
    # every kept token still sits at the latent cell its kept coordinate names
    for tok, (t, y, x) in zip(kept, kept_coords.tolist()):
        assert torch.equal(tok, z[:, t, 2 * y:2 * y + 2, 2 * x:2 * x + 2].reshape(-1))
    full, mask = restore_tokens(kept, keep, n)
    assert int(mask.sum()) == kept.shape[0]
    assert torch.equal(full[mask], tokens[mask]) and torch.all(full[~mask] == 0)


def test_pack_latents_dropping_positions_and_loss_mask_agree():
    gen = torch.Generator().manual_seed(0)
    zs = [torch.randn(3, 2, 8, 12), torch.randn(3, 1, 8, 8), torch.randn(3, 3, 4, 8)]
    pb = pack_latents(zs, (1, 2, 2), max_len=64, drop_rates=[0.5, 0.0, 0.25], generator=gen)
    for i, (z, grid, keep) in enumerate(zip(zs, pb.grids, pb.keep)):
        s, a, n = pb.locations[i]
        assert torch.equal(pb.coords[s, a:a + n], grid_coords(grid)[keep])
    latents, masks = pb.unpatchify(pb.tokens)
    for z, rec, m in zip(zs, latents, masks):
        cell = m.repeat_interleave(2, 1).repeat_interleave(2, 2).expand_as(z)
        assert torch.equal(rec[cell], z[cell]) and torch.all(rec[~cell] == 0)
    assert [int(m.sum()) for m in masks] == pb.lengths


def test_drop_rates_random_and_by_resolution():
    rates = random_drop_rates(1000, 0.5, generator=torch.Generator().manual_seed(0))
    assert rates.min() >= 0 and rates.max() <= 0.5 and rates.std() > 0.1
    by_size = [resolution_drop_rate(n, 16, 96, 0.0, 0.5) for n in (8, 16, 56, 96, 200)]
    assert by_size[0] == by_size[1] == 0.0 and by_size[-1] == by_size[-2] == 0.5
    assert by_size[1] < by_size[2] < by_size[3]
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        drop_tokens(torch.randn(4, 2), torch.zeros(4, 3, dtype=torch.long), 1.0)


# ----------------------------------------------------------------------------------------------
# positions
# ----------------------------------------------------------------------------------------------
def _mae_2d(dim, gh, gw):
    """MAE's 2D embedding from its description: first half encodes the column, second the row."""
    rows, cols = torch.meshgrid(torch.arange(gh), torch.arange(gw), indexing="ij")
    return torch.cat([sincos_1d(cols.flatten(), dim // 2), sincos_1d(rows.flatten(), dim // 2)], dim=1)


def test_sincos_1d_formula_and_3d_spatial_part_is_mae():
    pos = torch.tensor([0.0, 1.0, 5.0])
    emb = sincos_1d(pos, 8)
    omega = 1.0 / 10000 ** (torch.arange(4, dtype=torch.float64) / 4)
    torch.testing.assert_close(emb[:, :4], torch.sin(pos[:, None].double() * omega).float())
    torch.testing.assert_close(emb[:, 4:], torch.cos(pos[:, None].double() * omega).float())
    dim = 64
    coords = grid_coords((2, 3, 5))
    emb3 = sincos_3d(coords, dim)
    spatial = emb3[:, dim // 4:].reshape(2, 15, -1)
    for t in range(2):
        torch.testing.assert_close(spatial[t], _mae_2d(3 * dim // 4, 3, 5))
    assert not torch.equal(emb3[:15, : dim // 4], emb3[15:, : dim // 4])  # time is encoded


def test_scaled_sincos_matches_absolute_at_base_and_squeezes_larger_grids():
    base = (3, 4, 4)
    coords = grid_coords(base)
    torch.testing.assert_close(sincos_3d(coords, 32, base_grid=base, grid=base), sincos_3d(coords, 32))
    big = (3, 8, 12)  # a size never seen: positions land inside the base range
    from sora_mini.patches.positions import _positions

    pos = _positions(grid_coords(big), (None, 4, 4), big)
    assert pos[:, 1].max() < 4 and pos[:, 2].max() < 4 and torch.equal(pos[:, 0], grid_coords(big)[:, 0].double())
    with pytest.raises(ValueError, match="multiple of 16"):
        sincos_3d(coords, 40)


def test_rope_depends_only_on_offsets():
    torch.manual_seed(0)
    q, k = torch.randn(1, 2, 6, 16), torch.randn(1, 2, 6, 16)
    coords = torch.randint(0, 6, (1, 6, 3))
    shift = torch.tensor([3, -2, 7])

    def scores(c):
        cos, sin = rope_3d(c, 16)
        return apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)

    torch.testing.assert_close(scores(coords), scores(coords + shift), atol=1e-4, rtol=1e-4)
    cos, sin = rope_3d(coords, 16)
    torch.testing.assert_close(apply_rope(q, cos, sin).norm(dim=-1), q.norm(dim=-1))  # a rotation
    assert not torch.allclose(scores(coords), q @ k.transpose(-1, -2), atol=1e-3)  # and not the identity


def test_pooled_latent_has_a_causal_autoencoders_shape_and_means():
    from sora_mini.patches.patchify import pooled_latent

    v = torch.randn(3, 9, 32, 48)
    z = pooled_latent(v, 4, 4)
    assert z.shape == (3, 3, 8, 12)
    torch.testing.assert_close(z[:, 0, 1, 2], v[:, 0, 4:8, 8:12].mean((1, 2)))
    torch.testing.assert_close(z[:, 2, 0, 0], v[:, 5:9, :4, :4].mean((1, 2, 3)))
    with pytest.raises(ValueError, match="T = 1 \\+ 4n"):
        pooled_latent(torch.randn(3, 6, 32, 32), 4, 4)
