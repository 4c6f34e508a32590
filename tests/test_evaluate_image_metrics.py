"""PSNR and SSIM against their formulas, evaluated directly."""

import numpy as np
import pytest
import torch

from sora_mini.evaluate.image_metrics import PSNR_CAP_DB, psnr, ssim


def _gaussian_window(sigma=1.5, radius=5):
    x = np.arange(-radius, radius + 1)
    g = np.exp(-(x**2) / (2 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def _ssim_direct(a, b, L):
    """Wang et al. (2004) evaluated window by window over the pixels whose window fits."""
    w = _gaussian_window()
    r = 5
    H, W = a.shape
    vals = []
    for i in range(r, H - r):
        for j in range(r, W - r):
            pa, pb = (
                a[i - r : i + r + 1, j - r : j + r + 1],
                b[i - r : i + r + 1, j - r : j + r + 1],
            )
            ma, mb = (w * pa).sum(), (w * pb).sum()
            va, vb = (w * (pa - ma) ** 2).sum(), (w * (pb - mb) ** 2).sum()
            cov = (w * (pa - ma) * (pb - mb)).sum()
            c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
            vals.append(
                (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            )
    return float(np.mean(vals))


def test_psnr_matches_formula_per_frame():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 8, 9, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    got = psnr(a, b, data_range=255)
    mse = ((a.astype(float) - b.astype(float)) ** 2).reshape(3, -1).mean(1)
    np.testing.assert_allclose(got, 10 * np.log10(255**2 / mse), rtol=1e-12)
    assert np.isinf(psnr(a, a, cap=None)).all() and (psnr(a, a) == PSNR_CAP_DB).all()
    # the same in [0, 1] with data_range 1
    np.testing.assert_allclose(psnr(a / 255.0, b / 255.0, data_range=1.0), got, rtol=1e-9)


def test_ssim_matches_the_windowed_formula():
    rng = np.random.default_rng(1)
    a = rng.random((20, 23))
    b = np.clip(a + 0.2 * rng.standard_normal(a.shape), 0, 1)
    got = ssim(a, b, data_range=1.0)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(_ssim_direct(a, b, 1.0), abs=1e-9)


def test_ssim_properties():
    rng = np.random.default_rng(2)
    video = rng.random((2, 16, 16, 3))
    noisy = np.clip(video + 0.1 * rng.standard_normal(video.shape), 0, 1)
    np.testing.assert_allclose(ssim(video, video, data_range=1.0), 1.0)
    s = ssim(video, noisy, data_range=1.0)
    assert s.shape == (2,) and (s < 0.99).all()
    np.testing.assert_allclose(s, ssim(noisy, video, data_range=1.0))  # symmetric
    # more noise, lower SSIM; torch input works like numpy
    worse = ssim(
        video, np.clip(video + 0.3 * rng.standard_normal(video.shape), 0, 1), data_range=1.0
    )
    assert (worse < s).all()
    np.testing.assert_allclose(
        ssim(torch.tensor(video), torch.tensor(noisy), data_range=1.0), s, rtol=1e-5
    )


def test_clear_errors():
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((2, 8, 8, 3)), np.zeros((2, 8, 9, 3)))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
