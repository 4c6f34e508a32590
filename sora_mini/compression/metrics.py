"""How well an autoencoder reconstructs: PSNR and SSIM per frame, temporal flicker, code usage.

Shapes: videos float ``[3, T, H, W]`` in [-1, 1] (model space). PSNR and SSIM come from
``sora_mini.evaluate.image_metrics`` on uint8 frames (data range 255), so every notebook reports
the same numbers. Flicker is the error of the frame-to-frame change, which a per-frame codec gets
wrong even when each frame alone looks fine.
"""

from __future__ import annotations

import numpy as np
import torch

from sora_mini.convert import model_to_video
from sora_mini.evaluate.image_metrics import psnr, ssim

from .bottleneck import code_statistics


def _difference_error(original: np.ndarray, recon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(d_t original, |d_t recon - d_t original|)``, both float ``[T-1, H, W, 3]``."""
    a, b = original.astype(np.float64), recon.astype(np.float64)
    if a.shape[0] < 2:
        raise ValueError("flicker needs at least 2 frames; a single image has no frame differences")
    da = np.diff(a, axis=0)
    return da, np.abs(np.diff(b, axis=0) - da)


def temporal_flicker(original: np.ndarray, recon: np.ndarray) -> float:
    """Mean absolute error of frame differences, in 8-bit levels: ``mean |dx_hat - dx|``.

    ``original``, ``recon``: uint8 ``[T, H, W, 3]`` with ``T >= 2``; 0 means the reconstruction
    changes from frame to frame exactly as the original does.
    """
    return float(_difference_error(original, recon)[1].mean())


def flicker_breakdown(original: np.ndarray, recon: np.ndarray, temporal_factor: int = 1) -> dict:
    """Where the flicker is. ``original``, ``recon``: uint8 ``[T, H, W, 3]``, ``T >= 2``.

    ``static_share``: the part of the total frame-difference error on pixels the original does not
    change (a still background that the codec makes shimmer); ``within`` / ``across``: mean flicker of
    the frame pairs coded by one latent frame / by two (frame 0 is alone, then groups of ``k``),
    so a causal codec that flickers at its group seams shows ``across > within``. ``within`` is NaN
    when ``temporal_factor == 1`` (every pair crosses latent frames).
    """
    da, err = _difference_error(original, recon)  # [T-1, H, W, 3] each
    still = np.abs(da).max(axis=-1) == 0  # [T-1, H, W]: the original pixel does not change
    group = (np.arange(len(da) + 1) + temporal_factor - 1) // temporal_factor  # latent frame of each frame
    same = group[1:] == group[:-1]  # pair (i, i+1) inside one latent frame
    per_pair = err.mean(axis=(1, 2, 3))
    return {"flicker": float(err.mean()), "static_share": float(err[still].sum() / max(err.sum(), 1e-12)),
            "within": float(per_pair[same].mean()) if same.any() else float("nan"),
            "across": float(per_pair[~same].mean())}


@torch.no_grad()
def mean_flicker_breakdown(model, videos: list[torch.Tensor], device="cpu") -> dict:
    """:func:`flicker_breakdown` of ``model``'s reconstructions, averaged over ``videos`` (each float
    ``[3, T, H, W]`` in [-1, 1]; those with ``T < 2`` are skipped)."""
    model.eval()
    rows = [flicker_breakdown(model_to_video(v), model_to_video(model.reconstruct(v.unsqueeze(0).to(device))[0]),
                              model.temporal_factor) for v in videos if v.shape[1] >= 2]
    if not rows:
        raise ValueError("flicker needs videos of at least 2 frames; every video given is an image")
    return {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}


@torch.no_grad()
def latent_noise_flicker(model, videos: list[torch.Tensor], sigma: float, seed: int = 0,
                         device="cpu") -> dict:
    """PSNR and flicker of ``decode(encode(x) + sigma * eps)`` against ``x``: how a decoder turns an
    error in the (unit-variance, scaled) latent, as a diffusion sampler leaves, into pixels.

    A per-frame decoder gets independent noise on every frame; a causal 3D decoder gets one noise
    per latent frame and mixes neighbouring latent frames, so the same latent error flickers
    differently. ``videos``: float ``[3, T, H, W]`` in [-1, 1] with ``T >= 2``. ``flickers``: the
    flicker of each video (the values behind the mean, for an interval over videos).
    """
    model.eval()
    g = torch.Generator().manual_seed(seed)
    psnrs, flickers = [], []
    for v in videos:
        z = model.encode(v.unsqueeze(0).to(device))
        noise = torch.randn(z.shape, generator=g).to(z)
        rec = model.decode(z + sigma * noise).clamp(-1, 1)[0]
        a, b = model_to_video(v), model_to_video(rec)
        psnrs.append(psnr(a, b))
        flickers.append(temporal_flicker(a, b))
    return {"sigma": sigma, "psnr": float(np.concatenate(psnrs).mean()), "flicker": float(np.mean(flickers)),
            "flickers": [float(f) for f in flickers]}


@torch.no_grad()
def evaluate_autoencoder(model, videos: list[torch.Tensor], device="cpu") -> dict:
    """Reconstruct each video ``[3, T, H, W]`` and report PSNR / SSIM (mean over all frames),
    flicker (mean over videos with ``T >= 2``), bits per pixel and codebook usage/perplexity.

    ``per_video_psnr`` (each video's mean over its frames) and ``per_video_flicker`` (videos with
    ``T >= 2``) are the values behind the means, for an interval over videos.
    """
    model.eval()
    psnrs, ssims, flickers, codes, bpps, ratios = [], [], [], [], [], []
    for v in videos:
        x = v.unsqueeze(0).to(device)  # [1, 3, T, H, W]
        rec = model.reconstruct(x)[0]
        a, b = model_to_video(v), model_to_video(rec)
        psnrs.append(psnr(a, b))  # identical frames: capped at PSNR_CAP_DB
        ssims.append(ssim(a, b))
        if a.shape[0] >= 2:
            flickers.append(temporal_flicker(a, b))
        idx = model.indices(x)
        if idx is not None:
            codes.append(idx.reshape(-1).cpu())
        t, h, w = v.shape[1:]
        bpp = model.bits_per_pixel(t, h, w)
        if bpp is not None:
            bpps.append(bpp)
        ratios.append(model.compression_ratio(t, h, w))
    out = {"psnr": float(np.concatenate(psnrs).mean()), "ssim": float(np.concatenate(ssims).mean()),
           "flicker": float(np.mean(flickers)) if flickers else float("nan"),
           "compression_ratio": float(np.mean(ratios)), "videos": len(videos),
           "frames": int(sum(v.shape[1] for v in videos)),
           "per_video_psnr": [float(p.mean()) for p in psnrs], "per_video_flicker": [float(f) for f in flickers]}
    if bpps:
        out["bits_per_pixel"] = float(np.mean(bpps))
    if codes:
        stats = code_statistics(torch.cat(codes), model.bottleneck.codebook_size)
        out["codebook_usage"], out["perplexity"] = stats["usage"], stats["perplexity"]
    return out
