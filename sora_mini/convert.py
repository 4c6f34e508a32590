"""One rule for pixels: uint8 ``0..255`` channels-last for files and viewers, float ``[-1, 1]``
channels-first for models. Every conversion in the package goes through these functions.

Layouts: a *video* is uint8 ``[T, H, W, 3]`` (a batch ``[B, T, H, W, 3]``) or float
``[3, T, H, W]`` / ``[B, 3, T, H, W]``; an *image* batch is uint8 ``[N, H, W, 3]`` or float
``[N, 3, H, W]``. The model range is ``[-1, 1]`` (what every decoder returns); ``to_uint8`` takes
any other range by name.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange

MODEL_RANGE = (-1.0, 1.0)


def _check_uint8(x: torch.Tensor, what: str) -> None:
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 {what}, got {x.dtype}; float tensors in [-1, 1] "
                         "channels-first go to the model directly")


def float_to_uint8(x, value_range: tuple[float, float] = MODEL_RANGE) -> torch.Tensor:
    """Floats in ``value_range`` -> uint8 ``0..255`` (clipped, rounded half to even); any layout."""
    lo, hi = value_range
    if not hi > lo:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    x = torch.as_tensor(x).detach().float().cpu()
    return ((x.clamp(lo, hi) - lo) * (255.0 / (hi - lo))).round().to(torch.uint8)


def _tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def uint8_to_float(x) -> torch.Tensor:
    """uint8 ``0..255`` -> float32 in [-1, 1]; any layout."""
    x = _tensor(x)
    _check_uint8(x, "pixels")
    return x.float() / 127.5 - 1.0


def video_to_model(video) -> torch.Tensor:
    """uint8 video(s) ``[T, H, W, 3]`` or ``[B, T, H, W, 3]`` -> float ``[B, 3, T, H, W]`` in [-1, 1]."""
    x = _tensor(video)
    _check_uint8(x, "video [T, H, W, 3]")
    if x.ndim == 4:
        x = x.unsqueeze(0)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"expected [T, H, W, 3] or [B, T, H, W, 3], got shape {tuple(x.shape)}")
    return rearrange(uint8_to_float(x), "b t h w c -> b c t h w")


def model_to_video(x: torch.Tensor) -> np.ndarray:
    """float ``[3, T, H, W]`` or ``[B, 3, T, H, W]`` in [-1, 1] -> uint8 ``[T, H, W, 3]`` / ``[B, T, H, W, 3]``."""
    if x.ndim not in (4, 5) or x.shape[-4] != 3:
        raise ValueError(f"expected [3, T, H, W] or [B, 3, T, H, W], got shape {tuple(x.shape)}")
    u = float_to_uint8(x)
    pattern = "c t h w -> t h w c" if u.ndim == 4 else "b c t h w -> b t h w c"
    return rearrange(u, pattern).numpy()


def images_to_model(images) -> torch.Tensor:
    """uint8 images ``[N, H, W, 3]`` -> float ``[N, 3, H, W]`` in [-1, 1]."""
    x = _tensor(images)
    _check_uint8(x, "images [N, H, W, 3]")
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected [N, H, W, 3], got shape {tuple(x.shape)}")
    return rearrange(uint8_to_float(x), "n h w c -> n c h w")


def model_to_images(x: torch.Tensor) -> np.ndarray:
    """float ``[N, 3, H, W]`` in [-1, 1] -> uint8 ``[N, H, W, 3]``."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected [N, 3, H, W], got shape {tuple(x.shape)}")
    return rearrange(float_to_uint8(x), "n c h w -> n h w c").numpy()


def to_uint8(video, value_range: tuple[float, float] = MODEL_RANGE) -> np.ndarray:
    """Anything video-like -> uint8 ``[T, H, W, 3]`` for viewers, files and the evaluator.

    Takes torch or numpy, ``[T, H, W, 3]``, ``[3, T, H, W]``, ``[H, W, 3]``, ``[3, H, W]`` or one
    channel; uint8 passes through; floats are mapped from ``value_range`` (default: the model's
    [-1, 1]; pass ``(0, 1)`` for unit floats).
    """
    if isinstance(video, torch.Tensor):
        video = video.detach().cpu()
        arr = video.numpy() if video.dtype == torch.uint8 else video.float().numpy()
    else:
        arr = np.asarray(video)
    if arr.ndim == 4 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)  # [C, T, H, W] -> [T, H, W, C]
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)  # [C, H, W] -> [H, W, C]
    if arr.ndim == 3:
        arr = arr[None]  # one image -> a one-frame video
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise ValueError(f"expected a video [T, H, W, 3] / [3, T, H, W] or an image, got shape "
                         f"{arr.shape}")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    if arr.dtype != np.uint8:
        arr = float_to_uint8(arr, value_range).numpy()
    return np.ascontiguousarray(arr)
