"""The text-to-video targets of issue 12, side by side in one run on this CPU.

(1) Sampling: one 17-frame 32 x 32 video at batch 1 with the pipeline's default sampler, steps and
    guidance, prompt encoding and decoding included (the whole ``pipe(prompt)`` call): wall time,
    median of n calls (each a new seed) after one warm-up call. Target: <= 1 s.
(2) Training throughput: model FLOP/s of the text-to-video training step (``flops_per_token`` x
    real tokens per step / seconds per step; the step is the Trainer's own, in the recipe's
    precision as this machine runs it (bf16 autocast where the CPU has native bf16, else fp32:
    ``sora_mini.train.device.resolve_precision``), AdamW, EMA, on stand-in batches of the recipe's
    shape through ``artifacts.plan.measure_training``) over this machine's matmul FLOP/s in that
    precision (``bench_backbone.matmul_flops``: the best square [n, n] product), measured in the same
    process before and after the steps (the best of both).
    Target: ratio >= 0.5.
The pipeline is the scale's (``small``: ``runs/small/`` when trained there, else the shipped one;
``tiny``: trained first when missing, about 10 s); the training step is the scale's recipe model,
freshly initialised (throughput does not depend on the weights).
Run: ``.venv/bin/python benchmarks/bench_text_to_video.py [--scale small]``; ``main(quick=True)``:
tiny, fewer repeats (what the test runs).
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
import time
from pathlib import Path

FULL = {"scale": "small", "sample_runs": 10, "train_steps": 5, "matmul_n": 2048}
QUICK = {"scale": "tiny", "sample_runs": 3, "train_steps": 2, "matmul_n": 512}
SIZE = {"height": 32, "width": 32, "num_frames": 17}
PROMPT = "a red circle moves right"
SAMPLE_TARGET_S = 1.0
MFU_TARGET = 0.5


def _matmul_flops(n: int, dtype: str) -> float:
    """``bench_backbone.matmul_flops`` (one measurement of the machine's matmul rate, not a copy)."""
    spec = importlib.util.spec_from_file_location("bench_backbone", Path(__file__).with_name("bench_backbone.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.matmul_flops(n, dtype=dtype)


def load_pipeline(scale: str, run_root="runs"):
    """The scale's pipeline: trained first at ``tiny`` when missing; elsewhere a clear error
    (training ``small`` takes an hour: ``sora-mini train --scale small``)."""
    from sora_mini.pipeline import SoraMiniPipeline, get_pipeline

    if scale == "tiny":
        return get_pipeline(scale, run_root=run_root, progress=False)
    return SoraMiniPipeline.from_pretrained(scale, run_root=run_root)


def sampling_seconds(pipe, runs: int) -> dict:
    """Seconds of ``runs`` batch-1 calls at :data:`SIZE` with the pipeline's defaults, after a warm-up."""
    pipe(PROMPT, seed=0, **SIZE)  # warm-up: first-call allocations, the text encoder's caches
    times = []
    for seed in range(1, runs + 1):
        t0 = time.perf_counter()
        out = pipe(PROMPT, seed=seed, **SIZE)
        times.append(time.perf_counter() - t0)
    assert out.video.shape == (SIZE["num_frames"], SIZE["height"], SIZE["width"], 3)
    d = pipe.defaults
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": runs,
            "sampler": d.sampler, "steps": d.num_inference_steps, "guidance_scale": d.guidance_scale,
            "target_s": SAMPLE_TARGET_S, "met": statistics.median(times) <= SAMPLE_TARGET_S}


def training_throughput(scale: str, steps: int, matmul_n: int, run_root="runs") -> dict:
    """Model FLOP/s of ``steps`` training steps (after one warm-up) of the scale's recipe model,
    next to the matmul FLOP/s (in the precision the step runs in) measured before and after them."""
    import torch

    from sora_mini.artifacts.plan import STAND_IN_TEXT, measure_training, stand_in_videos
    from sora_mini.artifacts.video import video_training
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.train.device import resolve_precision
    from sora_mini.train.video import VideoBatches, flops_per_token

    training = video_training(scale, run_root=run_root)
    torch.manual_seed(training.recipe.seed)
    model = VideoDiT(training.model)
    batches = VideoBatches(stand_in_videos(training, STAND_IN_TEXT), training.recipe, training.model.patch_size)
    tokens = statistics.mean(batches(s)["tokens"] for s in range(1, steps + 1))  # the timed steps' batches
    per_token = flops_per_token(model, training.recipe.pack_length)
    precision = resolve_precision("cpu", training.trainer.precision)
    before = _matmul_flops(matmul_n, precision)
    run = measure_training(model, training, batches, steps=steps)
    matmul = max(before, _matmul_flops(matmul_n, precision))
    achieved = per_token * tokens / run["step_seconds"]
    return {"step_s": run["step_seconds"], "tokens_per_step": tokens, "flops_per_token": per_token,
            "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6, "model_flops_per_s": achieved,
            "matmul_flops_per_s": matmul, "matmul_n": matmul_n, "ratio": achieved / matmul, "target": MFU_TARGET,
            "met": achieved / matmul >= MFU_TARGET, "precision": precision, "steps": steps}


def main(quick: bool = False, scale: str | None = None, run_root="runs") -> dict:
    import torch

    c = QUICK if quick else FULL
    scale = scale or c["scale"]
    pipe = load_pipeline(scale, run_root)
    print(f"text-to-video at scale {scale}: {SIZE['num_frames']} x {SIZE['height']} x {SIZE['width']}, batch 1, "
          f"{torch.get_num_threads()} threads")
    sampling = sampling_seconds(pipe, c["sample_runs"])
    print(f"  sampling ({sampling['sampler']}, {sampling['steps']} steps, guidance {sampling['guidance_scale']:g}, "
          f"decoded): median {sampling['median_s']:.3f} s of {sampling['runs']} (min {sampling['min_s']:.3f}, "
          f"max {sampling['max_s']:.3f}); target <= {SAMPLE_TARGET_S:g} s: {'met' if sampling['met'] else 'NOT met'}")
    train = training_throughput(scale, c["train_steps"], c["matmul_n"], run_root)
    print(f"  training ({train['parameters_m']:.2f} M parameters, {train['tokens_per_step']:.0f} tokens a step, "
          f"{train['precision']}): {train['step_s']:.3f} s a step -> {train['model_flops_per_s'] / 1e9:.1f} GFLOP/s; "
          f"{train['precision']} matmul [{train['matmul_n']}]^2 {train['matmul_flops_per_s'] / 1e9:.1f} GFLOP/s; ratio "
          f"{train['ratio']:.2f} (target >= {MFU_TARGET:g}): {'met' if train['met'] else 'NOT met'}")
    return {"scale": scale, "threads": torch.get_num_threads(), "size": SIZE, "sampling": sampling, "training": train}


if __name__ == "__main__":
    chosen = sys.argv[sys.argv.index("--scale") + 1] if "--scale" in sys.argv else None
    main(quick="--quick" in sys.argv, scale=chosen)
