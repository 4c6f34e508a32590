"""How well an autoencoder reconstructs: PSNR and SSIM per frame, temporal flicker, code usage.

Shapes: videos float ``[3, T, H, W]`` in [-1, 1] (model space). PSNR and SSIM come from
``sora_mini.evaluate.image_metrics`` on uint8 frames (data range 255), so every notebook reports
the same numbers. Flicker is the error of the frame-to-frame change, which a per-frame codec gets
wrong even when each frame alone looks fine.
"""

from __future__ import annotations

import numpy as np
import torch

from sora_mini.evaluate.image_metrics import psnr, ssim

from .bottleneck import code_statistics
from .data import to_uint8_video


def temporal_flicker(original: np.ndarray, recon: np.ndarray) -> float:
    """Mean absolute error of frame differences, in 8-bit levels: ``mean |dx_hat - dx|``.

    ``original``, ``recon``: uint8 ``[T, H, W, 3]`` with ``T >= 2``; 0 means the reconstruction
    changes from frame to frame exactly as the original does.
    """
    a, b = original.astype(np.float64), recon.astype(np.float64)
    if a.shape[0] < 2:
        raise ValueError("flicker needs at least 2 frames; a single image has no frame differences")
    return float(np.abs(np.diff(b, axis=0) - np.diff(a, axis=0)).mean())


@torch.no_grad()
def evaluate_autoencoder(model, videos: list[torch.Tensor], device="cpu") -> dict:
    """Reconstruct each video ``[3, T, H, W]`` and report PSNR / SSIM (mean over all frames),
    flicker (mean over videos with ``T >= 2``), bits per pixel and codebook usage/perplexity.
    """
    model.eval()
    psnrs, ssims, flickers, codes, bpps, ratios = [], [], [], [], [], []
    for v in videos:
        x = v.unsqueeze(0).to(device)  # [1, 3, T, H, W]
        rec = model.reconstruct(x)[0]
        a, b = to_uint8_video(v), to_uint8_video(rec)
        psnrs.append(np.minimum(psnr(a, b), 100.0))  # identical frames: cap the infinity
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
           "frames": int(sum(v.shape[1] for v in videos))}
    if bpps:
        out["bits_per_pixel"] = float(np.mean(bpps))
    if codes:
        stats = code_statistics(torch.cat(codes), model.bottleneck.codebook_size)
        out["codebook_usage"], out["perplexity"] = stats["usage"], stats["perplexity"]
    return out
