"""How fast the procedural world renders, on one core, against how fast training consumes videos.

Figures: videos rendered per second (``render`` alone) and dataset items per second (render +
captions + conversion to a float tensor) for 16x32x32 and 16x36x64 videos, with
``torch.set_num_threads(1)``; the ratio to the consumption of a ``small`` training run, estimated
as its batch size x an assumed step rate (stated in the output). Target: ratio >= 10.
"""

from __future__ import annotations

import time

import torch

from sora_mini.config import get_config
from sora_mini.world import render, sample_specs
from sora_mini.world.datasets import WorldDataset

SIZES = ((16, 32, 32), (16, 36, 64))  # (T, H, W)
# The small preset trains its DiT at about 1 step/s on 2 CPU cores (1.0-1.4 s a step measured,
# both stages); 3 steps/s is a generous upper bound.
ASSUMED_SMALL_STEPS_PER_S = 3.0
TARGET_RATIO = 10.0


def _rate(fn, n: int, repeats: int) -> tuple[float, float]:
    """Items per second by wall clock and by this process's CPU time, best of ``repeats``.

    On one thread the CPU-time rate is what a quiet machine gives; the wall-clock rate also
    counts the time other processes took the core from us (this machine is shared).
    """
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            fn(i)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return n / wall, n / cpu


def main(quick: bool = False) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        n, repeats = (40, 1) if quick else (300, 3)
        specs = sample_specs(n, seed=0)
        small = get_config("small").train
        consumed = small.batch_size * ASSUMED_SMALL_STEPS_PER_S
        results = {"threads": 1, "videos_per_size": n, "assumed_small_steps_per_s": ASSUMED_SMALL_STEPS_PER_S,
                   "small_batch_size": small.batch_size, "small_videos_per_s": consumed, "sizes": {}}
        print(f"world rendering on 1 thread ({n} scenes, best of {repeats}); small training consumes "
              f"{small.batch_size} x {ASSUMED_SMALL_STEPS_PER_S} steps/s (assumed) = {consumed:.0f} videos/s")
        print(f"{'T x H x W':>10} {'render/s':>9} {'(cpu)':>7} {'item/s':>8} {'(cpu)':>7} "
              f"{'render/need':>12} {'item/need':>10} {'(cpu)':>7}")
        for t, h, w in SIZES:
            r, r_cpu = _rate(lambda i, h=h, w=w, t=t: render(specs[i], h, w, t), n, repeats)
            ds = WorldDataset(n, seed=0, sizes=((h, w),), frames=(t,))
            d, d_cpu = _rate(ds.__getitem__, n, repeats)
            key = f"{t}x{h}x{w}"
            results["sizes"][key] = {"render_per_s": r, "render_per_cpu_s": r_cpu, "item_per_s": d,
                                     "item_per_cpu_s": d_cpu, "render_ratio": r / consumed,
                                     "item_ratio": d / consumed, "item_ratio_cpu": d_cpu / consumed}
            print(f"{key:>10} {r:9.0f} {r_cpu:7.0f} {d:8.0f} {d_cpu:7.0f} {r / consumed:11.1f}x "
                  f"{d / consumed:9.1f}x {d_cpu / consumed:6.1f}x")
        worst = min(v["item_ratio"] for v in results["sizes"].values())
        worst_cpu = min(v["item_ratio_cpu"] for v in results["sizes"].values())
        results.update(worst_item_ratio=worst, worst_item_ratio_cpu=worst_cpu,
                       meets_target=worst >= TARGET_RATIO)
        print(f"dataset items vs small training: worst {worst:.1f}x by wall clock, {worst_cpu:.1f}x by CPU "
              f"time (target >= {TARGET_RATIO:.0f}x by wall clock: {'met' if worst >= TARGET_RATIO else 'NOT met'}; "
              "on a busy machine the CPU-time figure is the quiet-machine estimate)")
        return results
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
