"""Per-frame PSNR and SSIM for videos, in numpy (no pretrained networks, no extra packages).

Shapes: ``a`` and ``b`` are ``[T, H, W, C]`` (a video), ``[B, T, H, W, C]`` (a batch of videos),
``[H, W, C]`` or ``[H, W]``; uint8, float or torch tensors. Both functions return one value per
frame: ``[T]`` (``[B, T]`` for a batch); ``reduction="mean"`` averages over the frames instead
(a float, or ``[B]`` per video).

* PSNR = ``10 log10(L^2 / MSE)`` per frame, with ``L = data_range`` (255 for uint8, 1 for [0, 1]),
  capped at ``PSNR_CAP_DB`` (identical frames would be infinite; ``cap=None`` keeps ``inf``).
* SSIM (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from error visibility to
  structural similarity"): local means, variances and covariance under a Gaussian window
  (sigma 1.5, truncated at 3.5 sigma: 11x11), population (not sample) statistics,
  ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, computed per channel, averaged over the pixels whose
  window lies inside the frame (a 5-pixel border is cropped) and over channels. These are the
  conventions of scikit-image's ``structural_similarity(..., gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=L)``; this is our own implementation with
  ``scipy.ndimage.gaussian_filter``, checked in tests against the formula window by window.
  SSIM differs across libraries at about 1e-3: compare numbers from this function only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # window radius = int(3.5 * 1.5 + 0.5) = 5 -> 11 x 11
SSIM_K1, SSIM_K2 = 0.01, 0.03
# dB given to identical frames: above every finite PSNR of uint8 frames up to 224 x 224 x 3
# (one level off in one pixel: 10 log10(255^2 * 3 H W)), so the cap only replaces inf
PSNR_CAP_DB = 100.0
REDUCTIONS = ("none", "mean")


def _as_video(x, name: str) -> np.ndarray:
    """Any image / video / batch -> float64 [B, T, H, W, C]."""
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[None, :, :, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5:
        raise ValueError(
            f"{name} has shape {x.shape}; expected [B, T, H, W, C], [T, H, W, C], [H, W, C] or "
            "[H, W] (channels last)"
        )
    return x


def _pair(a, b) -> tuple[np.ndarray, np.ndarray, bool]:
    """-> both as [B, T, H, W, C], and whether the input was a batch."""
    batch = np.ndim(a) == 5
    a, b = _as_video(a, "a"), _as_video(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}; compare videos of the same size")
    return a, b, batch


def _reduce(values: np.ndarray, batch: bool, reduction: str):
    """[B, T] per-frame values -> per ``reduction`` ([B, T] / [T], or [B] / a float)."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; use one of {REDUCTIONS}")
    if reduction == "mean":
        values = values.mean(axis=1)
        return values if batch else float(values[0])
    return values if batch else values[0]


def psnr(a, b, data_range: float = 255.0, cap: float | None = PSNR_CAP_DB, reduction="none"):
    """PSNR in dB per frame -> [T] (a batch: [B, T]); ``cap`` where identical (``None``: inf).

    ``reduction="mean"``: the mean over frames (of the capped values) -> a float, or [B].
    """
    a, b, batch = _pair(a, b)
    mse = ((a - b) ** 2).mean(axis=(2, 3, 4))  # [B, T]
    with np.errstate(divide="ignore"):
        db = 10.0 * np.log10(data_range**2 / mse)
    if cap is not None:
        db = np.minimum(db, cap)
    return _reduce(db, batch, reduction)


def ssim(a, b, data_range: float = 255.0, reduction="none"):
    """Mean SSIM per frame (Gaussian window sigma 1.5) -> [T] (a batch: [B, T]), in [-1, 1]; 1
    where identical. ``reduction="mean"``: the mean over frames -> a float, or [B]."""
    a, b, batch = _pair(a, b)
    B, T = a.shape[:2]
    a, b = a.reshape(B * T, *a.shape[2:]), b.reshape(B * T, *b.shape[2:])
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(a.shape[1:3]) < 2 * radius + 1:
        raise ValueError(
            f"frames of {a.shape[1]}x{a.shape[2]} are smaller than the {2 * radius + 1}-pixel "
            "SSIM window; upsample them or use PSNR"
        )

    def blur(x):  # Gaussian over H and W only, per frame and channel
        return ndimage.gaussian_filter(
            x, sigma=(0, SSIM_SIGMA, SSIM_SIGMA, 0), truncate=SSIM_TRUNCATE, mode="reflect"
        )

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    s = s[:, radius:-radius, radius:-radius]  # windows that lie inside the frame
    return _reduce(s.mean(axis=(1, 2, 3)).reshape(B, T), batch, reduction)
