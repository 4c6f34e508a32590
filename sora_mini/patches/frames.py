"""Which pixel frames each latent frame of a causal video autoencoder covers, and back.

A causal autoencoder with temporal factor k encodes T = 1 + k n pixel frames into t = 1 + n latent
frames: latent frame 0 holds pixel frame 0 alone, latent frame j >= 1 the k pixel frames
(j - 1) k + 1 .. j k (CogVideoX / Open-Sora's causal first-frame rule; ``latent_frames``).

Conditioning frames are named in pixel frames and kept in latent frames, so the rule that joins
them is: **a latent frame is given only when every pixel frame it covers is given**; the pixel
frames actually kept are then those of the given latent frames (a partly given latent frame is
generated, and its given pixel frames with it).
"""

from __future__ import annotations

import numpy as np

from sora_mini.patches.patchify import latent_frames


def _check_factor(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"temporal factor must be an integer >= 1, got {k!r}")


def latent_frame_of(pixel_index: int, temporal_factor: int) -> int:
    """The latent frame that holds pixel frame ``pixel_index``: 0 for 0, else ceil(i / k)."""
    _check_factor(temporal_factor)
    if pixel_index < 0:
        raise ValueError(f"pixel frame index must be >= 0, got {pixel_index}")
    return -(-int(pixel_index) // temporal_factor)


def pixel_frames_of(latent_index: int, temporal_factor: int) -> range:
    """The pixel frames latent frame ``latent_index`` covers: range(1) for 0, else
    range((j - 1) k + 1, j k + 1)."""
    _check_factor(temporal_factor)
    if latent_index < 0:
        raise ValueError(f"latent frame index must be >= 0, got {latent_index}")
    k, j = temporal_factor, int(latent_index)
    return range(1) if j == 0 else range((j - 1) * k + 1, j * k + 1)


def latent_given(pixel_given, temporal_factor: int) -> np.ndarray:
    """bool [T] pixel frames given -> bool [t] latent frames given (every pixel frame given).

    T must be 1 + k n (``latent_frames`` names the nearest valid counts otherwise).
    """
    given = np.asarray(pixel_given, dtype=bool)
    t = latent_frames(len(given), temporal_factor)
    return np.array([given[list(pixel_frames_of(j, temporal_factor))].all() for j in range(t)], dtype=bool)


def pixel_given(latent_given_frames, temporal_factor: int) -> np.ndarray:
    """bool [t] latent frames given -> bool [T = 1 + k (t - 1)]: the pixel frames they cover."""
    latent = np.asarray(latent_given_frames, dtype=bool)
    _check_factor(temporal_factor)
    out = np.zeros(1 + temporal_factor * (len(latent) - 1), dtype=bool)
    for j in np.flatnonzero(latent):
        out[list(pixel_frames_of(int(j), temporal_factor))] = True
    return out


def head_pixel_frames(latent_count: int, temporal_factor: int) -> int:
    """Pixel frames of the first ``latent_count`` latent frames: 1 + (n - 1) k (0 for none)."""
    return 0 if latent_count <= 0 else 1 + (latent_count - 1) * temporal_factor


def tail_pixel_frames(latent_count: int, temporal_factor: int) -> int:
    """Pixel frames of the last ``latent_count`` latent frames of a clip longer than them: n k."""
    return max(0, latent_count) * temporal_factor
