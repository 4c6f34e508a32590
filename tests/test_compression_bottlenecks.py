"""Bottlenecks: KL posterior, EMA vector quantizer (straight-through, EMA, dead-code restart), FSQ."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mini.compression import (
    FSQ,
    DiagonalGaussian,
    KLBottleneck,
    VectorQuantizer,
    code_statistics,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# KL
# ----------------------------------------------------------------------------------------------
def test_kl_of_standard_normal_is_zero_and_grows_away_from_it():
    zeros = torch.zeros(2, 8, 3, 4, 4)  # mean 0, logvar 0
    assert DiagonalGaussian(zeros).kl().abs().max() == 0
    moved = zeros.clone()
    moved[:, :4] = 1.5  # mean 1.5
    kl = DiagonalGaussian(moved).kl()
    torch.testing.assert_close(kl, torch.full_like(kl, 0.5 * 1.5**2))


def test_kl_sample_has_the_posterior_mean_and_std():
    moments = torch.cat([torch.full((1, 1, 200, 200), 2.0), torch.full((1, 1, 200, 200), math.log(0.25))], 1)
    post = DiagonalGaussian(moments)
    z = post.sample(torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 2.0) < 0.01 and abs(z.std().item() - 0.5) < 0.01
    assert torch.equal(post.mode(), torch.full((1, 1, 200, 200), 2.0))


def test_kl_bottleneck_samples_in_training_and_uses_the_mean_in_eval():
    kl = KLBottleneck(2, kl_weight=0.1)
    h = torch.randn(3, 4, 2, 4, 4)
    kl.train()
    assert not torch.equal(kl(h).z, h[:, :2])
    kl.eval()
    out = kl(h)
    assert torch.equal(out.z, h[:, :2])
    torch.testing.assert_close(out.loss, 0.1 * DiagonalGaussian(h).kl().mean())


# ----------------------------------------------------------------------------------------------
# VQ
# ----------------------------------------------------------------------------------------------
def test_vq_snaps_to_the_nearest_code_and_passes_gradients_straight_through():
    vq = VectorQuantizer(dim=3, codebook_size=8).eval()
    h = torch.randn(2, 3, 4, 5, requires_grad=True)
    out = vq(h)
    rows = h.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    brute = torch.cdist(rows, vq.embed).argmin(1)
    assert torch.equal(out.indices.reshape(-1), brute)
    torch.testing.assert_close(out.z.detach().permute(0, 2, 3, 1).reshape(-1, 3), vq.embed[brute])
    g = torch.randn_like(h)
    (out.z * g).sum().backward()
    torch.testing.assert_close(h.grad, g)  # d z_q / d h = identity


def test_vq_commitment_loss_pulls_the_encoder_only():
    vq = VectorQuantizer(dim=2, codebook_size=4, commitment=0.25).eval()
    h = torch.randn(1, 2, 3, 3, requires_grad=True)
    out = vq(h)
    expected = 0.25 * (out.z.detach() - h.detach()).pow(2).mean()
    torch.testing.assert_close(out.loss, expected)
    assert not vq.embed.requires_grad  # the codebook learns by EMA, not by gradient


def test_vq_ema_moves_codes_to_the_mean_of_their_vectors():
    torch.manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0], [0.0, -4.0]])
    vq = VectorQuantizer(dim=2, codebook_size=4, decay=0.9, dead_threshold=0.0).train()
    for _ in range(60):
        pts = centres[torch.randint(0, 4, (256,))] + 0.1 * torch.randn(256, 2)
        vq(pts.t().reshape(1, 2, 16, 16))
    learned = vq.embed[torch.cdist(centres, vq.embed).argmin(1)]
    torch.testing.assert_close(learned, centres, atol=0.1, rtol=0)
    assert len(set(torch.cdist(centres, vq.embed).argmin(1).tolist())) == 4


def test_dead_codes_are_restarted_on_batch_vectors():
    torch.manual_seed(0)
    vq = VectorQuantizer(dim=2, codebook_size=16, decay=0.5, dead_threshold=1.0).train()
    vq.initialized.fill_(True)
    with torch.no_grad():  # every code far away from the data except code 0
        vq.embed.copy_(torch.full((16, 2), 100.0))
        vq.embed[0] = 0.0
        vq.embed_avg.copy_(vq.embed)
    data = torch.randn(1, 2, 16, 16)
    for _ in range(5):
        vq(data)
    # the restarted codes now sit on data vectors and get used
    assert vq.restarts >= 15
    assert vq.embed.abs().max() < 10
    vq.eval()
    assert code_statistics(vq(data).indices, 16)["usage"] > 0.5
    # without restart the far codes stay dead: usage 1/16
    stuck = VectorQuantizer(dim=2, codebook_size=16, dead_threshold=0.0).train()
    stuck.initialized.fill_(True)
    with torch.no_grad():
        stuck.embed.copy_(vq.embed.new_full((16, 2), 100.0))
        stuck.embed[0] = 0.0
        stuck.embed_avg.copy_(stuck.embed)
    for _ in range(5):
        stuck(data)
    assert code_statistics(stuck.eval()(data).indices, 16)["usage"] == 1 / 16


def test_code_statistics_usage_and_perplexity():
    uniform = code_statistics(torch.arange(8).repeat(10), 16)
    assert uniform["usage"] == 0.5
    assert uniform["perplexity"] == pytest.approx(8.0)
    single = code_statistics(torch.zeros(50, dtype=torch.long), 16)
    assert single["usage"] == 1 / 16 and single["perplexity"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------
# FSQ
# ----------------------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(levels=st.lists(st.integers(2, 8), min_size=1, max_size=4))
def test_fsq_codes_lie_on_the_grid_and_indices_round_trip(levels):
    fsq = FSQ(tuple(levels))
    h = torch.randn(2, len(levels), 3, 5) * 3
    out = fsq(h)
    assert out.indices.min() >= 0 and out.indices.max() < math.prod(levels)
    for c, L in enumerate(levels):
        values = torch.unique(out.z[:, c])
        grid = (torch.arange(L) - L // 2) / (L // 2)
        assert all(torch.isclose(v, grid).any() for v in values), (L, values)
    torch.testing.assert_close(fsq.indices_to_codes(out.indices), out.z)


def test_fsq_reaches_every_code_and_passes_gradients_straight_through():
    fsq = FSQ((3, 4))
    grid = torch.stack(torch.meshgrid(torch.linspace(-3, 3, 40), torch.linspace(-3, 3, 40),
                                      indexing="ij"))  # [2, 40, 40]
    out = fsq(grid.unsqueeze(0))
    assert torch.unique(out.indices).numel() == 12 == fsq.codebook_size
    h = torch.zeros(1, 2, 4, 4, requires_grad=True)
    g = torch.randn(1, 2, 4, 4)
    (fsq.quantize(h) * g).sum().backward()
    # gradient of round is the identity; what remains is bound()'s tanh slope, never zero
    assert (h.grad * g > 0).all()
    assert fsq.bits_per_position == pytest.approx(math.log2(12))
