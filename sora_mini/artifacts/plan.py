"""What a scale's text-to-video training will cost, before anything trains:
``plan_training(scale) -> dict`` (``sora-mini plan`` prints it).

Counted from the configs, no rendering: tokens per example over the training mix of sizes and
durations (the latent grid of each: the autoencoder's spatial / temporal factor, then the patch
size), examples, tokens and packed rows per step (the recipe's own draws, on a stand-in latent set
of the mix's shapes), parameters, and FLOPs (``flops_per_token`` x tokens, Kaplan et al.'s 6N plus
attention).

Measured (``measure=True``; seconds at small): one warm-up step and 3 timed steps of the real model
through the Trainer's own step (bf16 autocast as it trains) on stand-in batches of the recipe's
shape; the peak resident memory over those steps (Linux: ``VmHWM`` after resetting it through
``/proc/self/clear_refs``; elsewhere ``ru_maxrss``, the process's peak since it started, an upper
bound) plus the latent set the training holds; the data preparation rate (render + encode a few
clips, encode their captions); and, when the autoencoder of the scale is not trained yet, its
training (its steps x the time of a few measured steps, warm-up left out).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from sora_mini.artifacts.autoencoder import (
    autoencoder_config,
    autoencoder_dir,
    autoencoder_training,
)
from sora_mini.artifacts.store import is_complete
from sora_mini.artifacts.video import (
    AUTOENCODER_KIND,
    LATENTS_NAME,
    VideoTraining,
    latent_dir,
    video_model_dir,
    video_training,
)
from sora_mini.config import get_config
from sora_mini.patches.patchify import latent_frames, latent_grid

STAND_IN_VIDEOS = 512  # latent stand-ins drawn from the mix (the per-step draws need no more)
DATA_CLIPS = 16  # clips rendered and encoded to measure the data preparation rate
DATA_CAPTIONS = 64  # captions encoded (one batch) to measure the caption rate
STAND_IN_TEXT = 32  # caption tokens of the stand-in batches when nothing is measured


# ----------------------------------------------------------------------------------------------
# Counted
# ----------------------------------------------------------------------------------------------
def mix_tokens(training: VideoTraining) -> list[int]:
    """Tokens of one example for every (size, duration) of the training mix (equally likely)."""
    ae = autoencoder_config(training.scale, AUTOENCODER_KIND)
    d = training.data
    return [math.prod(latent_grid((h, w), t, ae.spatial_factor, ae.temporal_factor, training.model.patch_size))
            for (h, w) in d.sizes for t in d.frames]


STAND_IN_CAPTION = "a large red circle starts at the left and moves right slowly on a black background"


def stand_in_videos(training: VideoTraining, text_length: int):
    """A :class:`LatentVideos` of random latents with the shapes of the first training clips
    (``size_for``), and random captions of ``text_length`` tokens: batches of the recipe's shape."""
    from sora_mini.train.video import LatentVideos, size_for

    ae = autoencoder_config(training.scale, AUTOENCODER_KIND)
    n = min(training.data.videos, STAND_IN_VIDEOS)
    sizes = [size_for(i, training.data) for i in range(n)]
    latents = [torch.randn(ae.latent_channels, latent_frames(t, ae.temporal_factor), h // ae.spatial_factor,
                           w // ae.spatial_factor).to(torch.bfloat16) for t, h, w in sizes]
    dim = training.model.text_dim
    text = torch.randn(n, text_length, dim).to(torch.bfloat16)
    return LatentVideos(latents, [STAND_IN_CAPTION] * n, text, torch.ones(n, text_length, dtype=torch.bool),
                        torch.randn(1, 2, dim).to(torch.bfloat16), torch.ones(1, 2, dtype=torch.bool), sizes)


def step_shape(batches, steps: int = 8) -> dict:
    """Mean examples, real tokens and packed rows of the first ``steps`` batches."""
    drawn = [batches(s) for s in range(steps)]
    return {"examples_per_step": statistics.mean(len(b["t"]) for b in drawn),
            "tokens_per_step": statistics.mean(b["tokens"] for b in drawn),
            "rows_per_step": statistics.mean(b["packed"].tokens.shape[0] for b in drawn)}


# ----------------------------------------------------------------------------------------------
# Measured
# ----------------------------------------------------------------------------------------------
def _reset_peak_rss() -> str:
    """Reset the kernel's peak-RSS mark when it can be; returns how the peak will be read."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM, reset before the steps"
    except OSError:
        return "the process's peak since it started: an upper bound"


def _peak_rss_bytes() -> int:
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _step_times(trainer) -> list[float]:
    """Seconds of each step of ``trainer.fit()`` (timed by a callback); build the Trainer with the
    steps to time (:func:`_timing_config`): it fixes its step count when it is made."""
    marks = [time.perf_counter()]
    trainer.callbacks.append(lambda *_: marks.append(time.perf_counter()))
    trainer.fit()
    return [b - a for a, b in itertools.pairwise(marks)]


def _timing_config(config, steps: int):
    """``config`` for ``steps`` timed steps: no time budget, no bar."""
    return dataclasses.replace(config, steps=steps, minutes=None, progress=False)


def measure_training(model, training: VideoTraining, batches, *, device="cpu", steps: int = 3) -> dict:
    """Seconds per step (mean of ``steps`` after one warm-up) and the peak memory over them."""
    from sora_mini.train.loop import Trainer
    from sora_mini.train.video import flow_objective, packed_flow_loss

    loss_fn = packed_flow_loss(flow_objective(training.recipe), training.recipe.motion_weight)
    trainer = Trainer(model, loss_fn, batches, _timing_config(training.trainer, steps + 1), device=device)
    method = _reset_peak_rss()
    if trainer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(trainer.device)
    times = _step_times(trainer)[1:]
    out = {"step_seconds": statistics.mean(times), "peak_rss_bytes": _peak_rss_bytes(),
           "memory_method": f"peak RSS over {steps + 1} training steps ({method})"}
    if trainer.device.type == "cuda":
        out["peak_device_bytes"] = int(torch.cuda.max_memory_allocated(trainer.device))
    return out


@torch.no_grad()
def measure_data(training: VideoTraining, autoencoder, text_encoder, clips: int = DATA_CLIPS,
                 captions: int = DATA_CAPTIONS) -> dict:
    """Seconds per clip of spec sampling + rendering + encoding (the first ``clips`` of the mix), per
    caption encoded (a batch of ``captions``), and the longest caption in tokens; each after a
    warm-up call, as the one-time costs are paid once per training, not per clip."""
    from sora_mini.train.video import caption_for, encode_captions, encode_latents, size_for
    from sora_mini.world import render, sample_spec, spec_seed

    d = training.data
    specs = [sample_spec(spec_seed(d.seed, i), max_objects=d.max_objects) for i in range(max(clips, captions))]
    sizes = [size_for(i, d) for i in range(clips)]

    def load(i, size):
        return render(specs[i], size[1], size[2], size[0])[0]

    encode_latents(load, sizes[:1], autoencoder, progress=False)  # warm-up
    t0 = time.perf_counter()
    encode_latents(load, sizes, autoencoder, progress=False)
    t1 = time.perf_counter()
    texts = [caption_for(s, i, d) for i, s in enumerate(specs[:captions])]
    encode_captions(texts[:1], text_encoder, progress=False)  # warm-up
    t2 = time.perf_counter()
    _, mask, _, _ = encode_captions(texts, text_encoder, progress=False)
    t3 = time.perf_counter()
    return {"clip_seconds": (t1 - t0) / clips, "caption_seconds": (t3 - t2) / captions,
            "text_length": int(mask.sum(1).max())}


def measure_autoencoder_training(training: VideoTraining, *, device="cpu", steps: int = 3) -> float:
    """Estimated seconds to train the scale's autoencoder: its steps x the mean of ``steps`` measured
    steps after one warm-up (rendering on the way included, as in its first epoch)."""
    from sora_mini.compression.autoencoder import VideoAutoencoder
    from sora_mini.compression.data import WorldBatches
    from sora_mini.train.autoencoder import reconstruction_loss
    from sora_mini.train.loop import Trainer, TrainerConfig

    cfg = get_config(training.scale)
    recipe = autoencoder_training(cfg)
    model = VideoAutoencoder(autoencoder_config(cfg, AUTOENCODER_KIND))
    batches = WorldBatches(cfg.world, recipe.batch_size, seed=recipe.seed, spatial_factor=model.spatial_factor,
                           temporal_factor=model.temporal_factor, crop=recipe.crop)
    trainer = Trainer(model, lambda m, v: reconstruction_loss(m, v, recipe.l1_weight, recipe.temporal_weight),
                      batches, _timing_config(TrainerConfig(lr=recipe.lr, precision=recipe.precision), steps + 1),
                      device=device)
    return recipe.steps * statistics.mean(_step_times(trainer)[1:])


def latent_set_bytes(training: VideoTraining, text_length: int) -> int:
    """Bytes of the encoded training set in memory: bf16 latents of the mix's mean size and bf16
    caption tokens padded to ``text_length`` (plus their masks), for every training clip."""
    ae = autoencoder_config(training.scale, AUTOENCODER_KIND)
    d = training.data
    s = ae.spatial_factor
    latent = statistics.mean(ae.latent_channels * latent_frames(t, ae.temporal_factor) * (h // s) * (w // s)
                             for (h, w) in d.sizes for t in d.frames)
    return int(d.videos * (2 * latent + text_length * (2 * training.model.text_dim + 1)))


# ----------------------------------------------------------------------------------------------
# The plan
# ----------------------------------------------------------------------------------------------
def plan_training(scale: str = "tiny", *, run_root: str | os.PathLike = "runs", measure: bool = True,
                  device="cpu") -> dict:
    """The cost of training ``scale``'s text-to-video model (see the module docstring): a JSON-able
    dict of counts (tokens, parameters, FLOPs) and, with ``measure``, seconds and bytes (``None``
    without). Nothing is trained or written. A staged preset (``cfg.train.finetune``) adds
    ``"stage2"`` (``"stage3"``, ...), the same counts and times for each later stage, and their
    seconds to the totals (``seconds.total``, ``flops_total``); the top-level counts are stage 1's."""
    from sora_mini.artifacts.stages import finetune_training, stage_count, stage_dirs

    training = video_training(scale, run_root=run_root)
    ae_dir = autoencoder_dir(training.scale, kind=AUTOENCODER_KIND, run_root=run_root)
    timing = _measure_data_and_autoencoder(training, ae_dir, run_root=run_root, device=device) if measure else {}
    plan = _stage_plan(training, video_model_dir(training, run_root=run_root), timing, measure=measure,
                       device=device)
    if measure:
        plan["seconds"]["autoencoder"] = timing["autoencoder_seconds"]
        plan["seconds"]["total"] += timing["autoencoder_seconds"]
    folders = stage_dirs(scale, run_root=run_root)
    for stage in range(2, stage_count(scale) + 1):
        later = finetune_training(scale, run_root=run_root, stage=stage)
        timing_k = _measure_data_and_autoencoder(later, ae_dir, run_root=run_root, device=device,
                                                 time_autoencoder=False) if measure else {}  # its clips' own rate
        part = _stage_plan(later, folders[stage - 1], timing_k, measure=measure, device=device)
        plan[f"stage{stage}"] = part
        plan["flops_total"] += part["flops_total"]
        if measure:
            plan["seconds"]["total"] += part["seconds"]["total"]
            plan["peak_memory_bytes"] = max(plan["peak_memory_bytes"], part["peak_memory_bytes"])
    return plan


def _stage_plan(training: VideoTraining, folder: Path, timing: dict, *, measure: bool, device) -> dict:
    """One stage's counts and (``measure``) its step, training and data seconds and memory."""
    from sora_mini.artifacts.video import dit_of, training_model
    from sora_mini.train.video import VideoBatches, flops_per_token

    tokens = mix_tokens(training)
    plan = {"scale": training.scale, "folder": str(folder), "steps": training.trainer.steps,
            "data": {"videos": training.data.videos, "sizes": [list(s) for s in training.data.sizes],
                     "frames": list(training.data.frames)},
            "tokens_per_example": {"min": min(tokens), "mean": statistics.mean(tokens), "max": max(tokens)},
            "pack_length": training.recipe.pack_length}
    text_length = timing.get("text_length", STAND_IN_TEXT)
    model = training_model(training)  # with the caption transformer, when the stage trains one
    batches = VideoBatches(stand_in_videos(training, text_length), training.recipe, training.model.patch_size)
    plan.update(step_shape(batches))
    per_token = flops_per_token(dit_of(model), training.recipe.pack_length)
    plan.update(parameters=sum(p.numel() for p in model.parameters()), flops_per_token=per_token,
                flops_per_step=per_token * plan["tokens_per_step"],
                flops_total=per_token * plan["tokens_per_step"] * training.trainer.steps, measured=measure)
    if not measure:
        return {**plan, "seconds": None, "memory": None, "peak_memory_bytes": None}
    run = measure_training(model, training, batches, device=device)
    latent_bytes = latent_set_bytes(training, text_length)
    train_s = run["step_seconds"] * training.trainer.steps
    plan["seconds"] = {"step": run["step_seconds"], "train": train_s, "data": timing["data_seconds"],
                       "autoencoder": 0.0, "total": train_s + timing["data_seconds"]}
    plan["memory"] = {"peak_rss_bytes": run["peak_rss_bytes"], "latent_set_bytes": latent_bytes,
                      "method": run["memory_method"]}
    if "peak_device_bytes" in run:
        plan["memory"]["peak_device_bytes"] = run["peak_device_bytes"]
    plan["peak_memory_bytes"] = run["peak_rss_bytes"] + latent_bytes
    return plan


def _data_seconds(training: VideoTraining, timing: dict, run_root) -> float:
    """Seconds to render and encode ``training``'s clips at the measured rates (0 when cached)."""
    if (latent_dir(training, run_root=run_root) / LATENTS_NAME).is_file():
        return 0.0
    return training.data.videos * (timing["clip_seconds"] + timing["caption_seconds"])


def _measure_data_and_autoencoder(training: VideoTraining, ae_dir: Path, *, run_root, device,
                                  time_autoencoder: bool = True) -> dict:
    """Data preparation seconds (0 when the latents are cached), the autoencoder's training seconds
    (0 when it is trained, or not asked for) and the measured caption length."""
    from sora_mini.artifacts.autoencoder import load_autoencoder
    from sora_mini.compression.autoencoder import VideoAutoencoder
    from sora_mini.text.frozen import frozen_encoder

    trained = is_complete(ae_dir)
    model = load_autoencoder(ae_dir, device=device) if trained else \
        VideoAutoencoder(autoencoder_config(training.scale, AUTOENCODER_KIND)).to(device).eval()
    rates = measure_data(training, model, frozen_encoder(training.text_encoder).to(device))
    return {**rates, "data_seconds": _data_seconds(training, rates, run_root),
            "autoencoder_seconds": 0.0 if trained or not time_autoencoder else
            measure_autoencoder_training(training, device=device)}
