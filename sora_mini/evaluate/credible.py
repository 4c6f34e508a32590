"""Is a detection an object? The floor every detection must pass before any attribute counts.

The analyzer calls every palette colour with enough solid pixels an object, so colour noise
(random pixels, 4x4 colour blocks, a decoder's smooth noise) yields "objects" of every colour.
A detection is *credible* only when, over the frames where it shows:

* **one piece**: the median share of its coverage in its largest connected piece is at least
  ``MIN_ONE_PIECE`` (a shape is one blob; scattered noise is many);
* **a shape fits**: in at least ``MIN_FIT_SHARE`` of those frames one of the three templates
  explains its coverage with a misfit (L1 template error per unit of coverage, ``shapes``) of at
  most ``MAX_SHAPE_MISFIT``.

Measured (about 1100 rendered objects each, seeds 500-649 and 900-1099, 32x32 to 48x48, T = 1 to 17): a
median one-piece share >= 0.92 and misfit <= 0.05 (<= 0.48 blurred by a 1-pixel Gaussian, whose
fit share stays >= 0.6 even at sigma 1.5 px); colour objects of uniform noise have one-piece
<= 0.12, of 4x4 colour blocks <= 0.5, of smooth noise <= 0.83 with fit shares <= 0.4.
"""

from __future__ import annotations

import numpy as np

MIN_ONE_PIECE = 0.75  # rendered shapes >= 0.92 (blurred too), 4x4 colour blocks <= 0.5
MAX_SHAPE_MISFIT = 0.6  # a template explains the coverage: rendered <= 0.05, blurred 1 px <= 0.48
MIN_FIT_SHARE = 0.5  # a shape fits in most frames where it shows (smooth noise: <= 0.4)


def credibility(fit_misfit: np.ndarray, one_piece: np.ndarray, visible: np.ndarray) -> dict:
    """Per-frame best-template misfit ``[T]``, largest-piece share ``[T]`` and visibility ``[T]``
    -> {"credible": bool, "one_piece": median share, "fit_share": share of frames a shape fits}."""
    seen = np.asarray(visible, dtype=bool)
    if not seen.any():
        return {"credible": False, "one_piece": 0.0, "fit_share": 0.0}
    piece = float(np.median(np.asarray(one_piece)[seen]))
    misfit = np.asarray(fit_misfit)[seen]
    fit = float(np.mean(np.isfinite(misfit) & (misfit <= MAX_SHAPE_MISFIT)))
    return {
        "credible": bool(piece >= MIN_ONE_PIECE and fit >= MIN_FIT_SHARE),
        "one_piece": round(piece, 3),
        "fit_share": round(fit, 3),
    }
