"""Evaluator benchmark: adherence on ground truth vs mismatched prompts per attribute, and speed.

Renders held-out world scenes over the small preset's sizes (1:1, 16:9, 9:16, 2:1) and durations,
reads them back with the analyzer, and prints per attribute: accuracy on the true spec (all cases,
and without the turns no pixel shows), on another scene's spec (mismatched), and the chance
levels. Then the analyzer's speed in videos per second at a few sizes.
"""

from __future__ import annotations

import time

from sora_mini.evaluate.analyzer import VideoAnalyzer
from sora_mini.evaluate.validate import WORLD_FRAMES, WORLD_SIZES, validate_evaluator
from sora_mini.world import render, sample_spec


def _speed(H: int, W: int, T: int, n: int) -> float:
    videos = [render(sample_spec(10_000 + i), H, W, T)[0] for i in range(n)]
    analyzer = VideoAnalyzer()
    start = time.perf_counter()
    for v in videos:
        analyzer.analyze(v)
    return n / (time.perf_counter() - start)


def main(quick: bool = False) -> dict:
    n = 200 if quick else 1000
    report = validate_evaluator(
        n=n, seed=31337, sizes=WORLD_SIZES, frames=WORLD_FRAMES, verbose=False
    )
    print(f"Evaluator on {n} held-out world videos, sizes {WORLD_SIZES}, frames {WORLD_FRAMES}")
    print(report.table())
    truth, obs = report.accuracy("truth"), report.accuracy("observable")
    mism, chance = report.accuracy("mismatched"), report.accuracy("chance")
    ratio = {a: (obs[a] / mism[a] if mism[a] else None) for a in obs}
    print("truth / mismatched ratio: " + ", ".join(f"{a} {r:.1f}x" for a, r in ratio.items() if r))
    speeds = {}
    for H, W, T in ((32, 32, 9), (32, 56, 17), (64, 112, 33)):
        k = 10 if quick else 40
        speeds[f"{H}x{W}x{T}"] = _speed(H, W, T, k if H < 64 else max(3, k // 4))
    print(
        "analyzer speed (videos/s, noisy on a shared CPU): "
        + ", ".join(f"{k}: {v:.1f}" for k, v in speeds.items())
    )
    return {
        "n": n,
        "truth": truth,
        "observable": obs,
        "mismatched": mism,
        "chance": chance,
        "vocab": report.vocab,
        "truth_over_mismatched": ratio,
        "videos_per_second": speeds,
        "failures": len(report.failures),
    }


if __name__ == "__main__":
    main()
