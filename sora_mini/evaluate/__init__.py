"""Measure a video against its prompt from pixels alone: adherence, physics, framing, PSNR/SSIM.

What a user needs (videos are uint8 ``[T, H, W, 3]`` unless said otherwise):

* ``evaluate_video(video, caption, value_range=(-1, 1)) -> dict``: what ``sora-mini evaluate``
  prints; takes uint8, or floats in ``value_range`` (the model's [-1, 1] by default), torch or
  numpy, ``[T, H, W, 3]`` or ``[3, T, H, W]``.
* ``evaluate(video_or_analysis, caption_or_spec) -> dict``: adherence per attribute (``overall``),
  physics, consistency, framing, every colour found (``detected``) and how many are credible.
* ``VideoAnalyzer().analyze(video) -> Analysis`` (``ObjectAnalysis`` per colour found;
  ``Analysis.credible_objects``: those that pass the object floor, ``credibility``).
* ``score_adherence(detected, background, target, frames)``: adherence of attribute dicts.
* ``psnr(a, b)`` / ``ssim(a, b)``: per frame ``[T]`` (a batch ``[B, T, H, W, C]``: ``[B, T]``;
  ``reduction="mean"`` averages frames); PSNR capped at ``PSNR_CAP_DB`` where frames are identical.
* ``validate_evaluator(n, seed, sizes, frames) -> ValidationReport``: the evaluator measured on
  rendered ground truth and on mismatched captions (imports the world renderer on first use).
* Constants: ``SCORED`` (the adherence attributes), ``MOTION_ATTRIBUTES``, the object floor
  ``MIN_ONE_PIECE``, ``MAX_SHAPE_MISFIT``, ``MIN_FIT_SHARE``.

The evaluator imports only ``sora_mini.world`` (its vocabulary and shape templates),
``sora_mini.convert`` (float videos, on use) and numpy / scipy: never the models or training code.
"""

from sora_mini.evaluate.analyzer import Analysis, ObjectAnalysis, VideoAnalyzer
from sora_mini.evaluate.credible import (
    MAX_SHAPE_MISFIT,
    MIN_FIT_SHARE,
    MIN_ONE_PIECE,
    credibility,
)
from sora_mini.evaluate.image_metrics import PSNR_CAP_DB, psnr, ssim
from sora_mini.evaluate.metrics import (
    MOTION_ATTRIBUTES,
    SCORED,
    evaluate,
    evaluate_video,
    score_adherence,
)

__all__ = [
    "MAX_SHAPE_MISFIT",
    "MIN_FIT_SHARE",
    "MIN_ONE_PIECE",
    "MOTION_ATTRIBUTES",
    "PSNR_CAP_DB",
    "SCORED",
    "Analysis",
    "ObjectAnalysis",
    "ValidationReport",
    "VideoAnalyzer",
    "credibility",
    "evaluate",
    "evaluate_video",
    "psnr",
    "score_adherence",
    "ssim",
    "validate_evaluator",
]


def __getattr__(name):  # validate pulls in the world renderer and sampler; import it only when asked
    if name in ("validate_evaluator", "ValidationReport"):
        from sora_mini.evaluate import validate

        return getattr(validate, name)
    raise AttributeError(name)
