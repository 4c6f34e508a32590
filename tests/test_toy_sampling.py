"""Notebook 03's measurements with their spread (sora_mini.studies.toy_sampling)."""

from __future__ import annotations

import math

import pytest
import torch

from sora_mini.diffusion import FlowMatching
from sora_mini.studies import toy_sampling as ts


def test_wilson_interval_matches_the_textbook_values():
    assert ts.wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    lo, hi = ts.wilson_interval(8, 16)
    assert lo == pytest.approx(1 - hi) and lo == pytest.approx(0.280, abs=1e-3)  # symmetric around 1/2
    for k, n in [(1, 16), (15, 16), (63, 64), (400, 800)]:
        lo, hi = ts.wilson_interval(k, n)
        assert 0 <= lo < k / n < hi <= 1
    assert ts.wilson_interval(0, 0) == (0.0, 1.0)
    assert ts.rate_interval(0.875, 16) == ts.wilson_interval(14, 16)
    assert ts.format_rate(0.875, 16) == "0.88 (0.64-0.97)"


def test_intervals_and_bars():
    assert ts.intervals_overlap((0.5, 0.9), (0.8, 1.0)) and not ts.intervals_overlap((0.1, 0.2), (0.3, 0.4))
    assert ts.bars_separate([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    assert not ts.bars_separate([1.0, 1.5, 0.5], [1.2, 1.3, 1.1])


def test_path_straightness_of_known_paths():
    line = torch.linspace(0, 1, 5)[:, None, None] * torch.tensor([[3.0, 4.0]])  # [5, 1, 2]
    corner = torch.tensor([[[0.0, 0.0]], [[1.0, 0.0]], [[1.0, 1.0]]])  # [3, 1, 2]: a right angle
    r = ts.path_straightness(torch.cat([line[[0, 2, 4]], corner], dim=1))  # two points, 3 steps each
    assert r[0] == pytest.approx(1.0) and r[1] == pytest.approx(math.sqrt(2))


def test_sampling_path_and_chamfer_over_seeds():
    flow = FlowMatching()

    def model(x, t):  # a plain function of the objective's t: the exact velocity towards the origin
        return x / t.clamp(min=1e-6)[:, None]

    x_T = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    path = ts.sampling_path(model, flow, "euler", 4, x_T)
    assert path.shape == (5, 16, 2) and torch.equal(path[0], x_T)
    torch.testing.assert_close(ts.path_straightness(path), torch.ones(16))  # straight lines to the origin
    first, chamfers = ts.chamfer_over_seeds(model, flow, "euler", 4, torch.zeros(1, 2), seeds=[0, 1], n=32)
    assert first.shape == (32, 2) and chamfers.shape == (2,) and chamfers.max() < 1e-5
