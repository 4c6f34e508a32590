"""Measure a video against its prompt from pixels alone: adherence, physics, framing, PSNR/SSIM.

``VideoAnalyzer().analyze(video) -> Analysis``; ``evaluate(video, caption_or_spec) -> dict``;
``evaluate_video(video, caption) -> dict`` (what ``sora-mini evaluate`` prints);
``validate_evaluator(...)`` measures the evaluator itself on rendered ground truth.
"""

from sora_mini.evaluate.analyzer import Analysis, ObjectAnalysis, VideoAnalyzer
from sora_mini.evaluate.image_metrics import psnr, ssim
from sora_mini.evaluate.metrics import evaluate, evaluate_video, score_adherence

__all__ = [
    "Analysis",
    "ObjectAnalysis",
    "VideoAnalyzer",
    "evaluate",
    "evaluate_video",
    "psnr",
    "score_adherence",
    "ssim",
    "validate_evaluator",
]


def __getattr__(name):  # validate pulls in the world renderer; import it only when asked
    if name == "validate_evaluator":
        from sora_mini.evaluate.validate import validate_evaluator

        return validate_evaluator
    raise AttributeError(name)
