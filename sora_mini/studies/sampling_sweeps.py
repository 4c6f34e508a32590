"""Sampling the trained text-to-video pipeline: what the sampler, the step count and the guidance
scale buy in prompt adherence, time and diversity (notebook 07).

Two sweeps over the same few prompts (the first ``prompts`` held-out one-object compositions of
:mod:`sora_mini.studies.prompt_suite`, at 1:1) and noise seeds:

* ``steps``: each sampler x step count at the pipeline's guidance: adherence (the evaluator's
  ``adherence.overall`` against the short prompt) and seconds per video (decoding included);
* ``guidance``: each guidance scale at the pipeline's sampler and steps: adherence and diversity,
  the mean pairwise pixel distance between the samples of one prompt over seeds
  (``caption_conditioning.diversity``; Ho & Salimans 2022: guidance trades diversity for fidelity).

Each prompt is extended once (``extend_prompt(prompt, seed=0)``) and passed with ``extend=False``,
so the samples of one prompt differ by their noise alone, not by drawn unstated attributes.
Spreads: the std over seeds of the per-seed mean (adherence, seconds) and over prompts (diversity).

``run_sweep(pipe, kind, config)``; ``load_or_run_sweep(kind, pipe_folder, scale)`` caches the result
as ``runs/<scale>/sampling_<kind>-<hash>/result.json``.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from sora_mini.config import scale_preset

KINDS = ("steps", "guidance")


@dataclass(frozen=True)
class SweepConfig:
    """What the sweeps generate; ``None`` takes the pipeline's default (``SamplingDefaults``)."""

    prompts: int = 6  # held-out one-object prompts
    seeds: int = 4  # noise seeds per prompt (>= 2: diversity compares samples of one prompt)
    height: int = 32
    width: int = 32
    num_frames: int = 17
    samplers: tuple[str, ...] = ("euler", "heun")
    steps: tuple[int, ...] = (4, 8, 16, 32)
    guidance_scales: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 7.0)
    guidance: float | None = None  # the guidance of the steps sweep
    sampler: str | None = None  # the sampler and steps of the guidance sweep
    sample_steps: int | None = None
    holdout: int = 16  # must match the training's hold-out (as the prompt suite's)

    def __post_init__(self):
        if self.seeds < 2:
            raise ValueError(f"seeds={self.seeds}: diversity needs at least 2 samples of a prompt; use seeds >= 2")
        if self.prompts < 1:
            raise ValueError(f"prompts must be >= 1, got {self.prompts}")


SWEEP_PRESETS = {"tiny": SweepConfig(prompts=2, seeds=2, num_frames=9, steps=(2, 4, 8, 16), sample_steps=4),
                 "small": SweepConfig(),
                 "base": SweepConfig(prompts=16, height=64, width=64, num_frames=33, steps=(4, 8, 16, 32, 64))}


def sweep_config(scale, **overrides) -> SweepConfig:
    return scale_preset(SWEEP_PRESETS, scale, **overrides)


def sweep_prompts(config: SweepConfig) -> list[str]:
    """The first ``config.prompts`` held-out one-object prompts ("a cyan triangle moves up left")."""
    from sora_mini.studies.prompt_suite import SuiteConfig, suite_prompts

    suite = suite_prompts(SuiteConfig(holdout=config.holdout))
    prompts = [p["prompt"] for p in suite if p["group"] == "one_object" and p["aspect"] == "1:1"]
    if config.prompts > len(prompts):
        raise ValueError(f"prompts={config.prompts} but the hold-out has {len(prompts)}; use at most that")
    return prompts[:config.prompts]


# ----------------------------------------------------------------------------------------------
# One point of a sweep
# ----------------------------------------------------------------------------------------------
def generate(pipe, prompts: list[str], config: SweepConfig, seed: int, **sampling):
    """One batch, one video per prompt, noise from ``seed``: (uint8 [B, T, H, W, 3], seconds per
    video, decoding included). ``sampling``: ``sampler``, ``num_inference_steps``, ``guidance_scale``."""
    from sora_mini.text import extend_prompt

    used = [extend_prompt(p, seed=0) for p in prompts]
    t0 = time.perf_counter()
    out = pipe(used, height=config.height, width=config.width, num_frames=config.num_frames, seed=seed,
               extend=False, **sampling)
    return out.videos, (time.perf_counter() - t0) / len(prompts)


def adherence(videos: np.ndarray, prompts: list[str]) -> list[float]:
    """The evaluator's overall adherence of each video [B, T, H, W, 3] to its short prompt."""
    from sora_mini.evaluate import evaluate_video

    return [float(evaluate_video(v, p)["adherence"]["overall"]) for v, p in zip(videos, prompts)]


def video_diversity(videos: np.ndarray) -> float:
    """Mean pairwise pixel distance (mean |a - b|, pixels in [0, 1]) of uint8 [N, T, H, W, 3] samples."""
    import torch

    from sora_mini.convert import uint8_to_float
    from sora_mini.studies.caption_conditioning import diversity

    return diversity(uint8_to_float(torch.from_numpy(np.ascontiguousarray(videos))))


def _spread(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(np.std(values))


def measure_point(pipe, prompts: list[str], config: SweepConfig, **sampling) -> dict:
    """Every prompt at every seed with these ``sampling`` settings: adherence and seconds per video
    (mean, std over seeds), diversity (mean, std over prompts)."""
    per_seed, seconds, samples = [], [], []
    for seed in range(config.seeds):
        videos, s = generate(pipe, prompts, config, seed, **sampling)
        per_seed.append(float(np.mean(adherence(videos, prompts))))
        seconds.append(s)
        samples.append(videos)
    by_prompt = np.stack(samples, 1)  # [prompts, seeds, T, H, W, 3]
    div = [video_diversity(v) for v in by_prompt]
    row = {**sampling, "adherence_per_seed": per_seed, "seconds_median": statistics.median(seconds)}
    row["adherence"], row["adherence_std"] = _spread(per_seed)
    row["seconds"], row["seconds_std"] = _spread(seconds)
    row["diversity"], row["diversity_std"] = _spread(div)
    return row


# ----------------------------------------------------------------------------------------------
# The sweeps
# ----------------------------------------------------------------------------------------------
def sweep_points(pipe, kind: str, config: SweepConfig) -> list[dict]:
    """The sampling settings of every point of sweep ``kind`` (``None`` fields: the pipeline's)."""
    d = pipe.defaults
    if kind == "steps":
        scale = d.guidance_scale if config.guidance is None else config.guidance
        return [{"sampler": s, "num_inference_steps": n, "guidance_scale": scale}
                for s in config.samplers for n in config.steps]
    if kind == "guidance":
        sampler, steps = config.sampler or d.sampler, config.sample_steps or d.num_inference_steps
        return [{"sampler": sampler, "num_inference_steps": steps, "guidance_scale": float(w)}
                for w in config.guidance_scales]
    raise ValueError(f"unknown sweep {kind!r}; choose one of {', '.join(KINDS)}")


def run_sweep(pipe, kind: str, config: SweepConfig, *, progress: bool = True) -> dict:
    """Measure every point of sweep ``kind`` (see the module docstring): ``{"kind", "prompts",
    "config", "rows"}``, each row the point's settings, ``evals`` (model evaluations, before the 2x
    of guidance) and :func:`measure_point`'s figures. One warm-up call first, so the first point's
    time holds no one-time costs."""
    from tqdm.auto import tqdm

    from sora_mini.diffusion.samplers import count_evals

    prompts = sweep_prompts(config)
    points = sweep_points(pipe, kind, config)
    generate(pipe, prompts[:1], config, 0, num_inference_steps=1)  # warm-up
    rows = []
    for point in tqdm(points, desc=f"{kind} sweep", disable=not progress, leave=False):
        row = measure_point(pipe, prompts, config, **point)
        rows.append({**row, "evals": count_evals(point["sampler"], point["num_inference_steps"])})
    return {"kind": kind, "prompts": prompts, "config": asdict(config), "rows": rows}


@dataclass(frozen=True)
class _Measured:
    """What a cached sweep is keyed by: the pipeline folder, the sweep and its config."""

    pipeline: str
    kind: str
    sweep: SweepConfig


def load_or_run_sweep(kind: str, pipe_folder, scale, *, run_root="runs", retrain: bool = False,
                      progress: bool = True, device="cpu", **overrides) -> dict:
    """Sweep ``kind`` of the pipeline in ``pipe_folder``, cached as
    ``<run_root>/<scale>/sampling_<kind>-<hash>/result.json`` (``retrain=True`` measures again)."""
    from sora_mini.artifacts.store import part_dir
    from sora_mini.checkpoint import atomic_write
    from sora_mini.pipeline import SoraMiniPipeline

    if kind not in KINDS:
        raise ValueError(f"unknown sweep {kind!r}; choose one of {', '.join(KINDS)}")
    config = sweep_config(scale, **overrides)
    key = _Measured(str(Path(pipe_folder).resolve()), kind, config)
    path = part_dir(run_root, getattr(scale, "name", scale), f"sampling_{kind}", key) / "result.json"
    if path.is_file() and not retrain:
        return json.loads(path.read_text())
    result = run_sweep(SoraMiniPipeline.from_pretrained(pipe_folder, device=device), kind, config, progress=progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return json.loads(text)  # as a cached call returns it (tuples become lists)
