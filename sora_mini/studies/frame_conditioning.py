"""The frame-conditioning ablation: one video-prediction task, every way of feeding the clean frames.

Task: world videos of T frames; the first ``cond_frames`` are given clean, the model generates the
rest. Each way (``FRAME_CONDITIONING`` minus "none") trains the same video DiT with the same data,
steps, batch and seed (equal compute up to the ways' own extra layers; the wall time is reported),
by flow matching (``sora_mini.diffusion.FlowMatching``), loss on the generated frames only. Then
each samples the eval videos with the Euler sampler and is scored: PSNR / SSIM of the generated
frames against the truth, and the evaluator's physics and adherence scores when it is available.
Also: the model trained with ``cond_frames`` given frames, asked with 1 (``fewer_frames``).
Pixel space (videos downscaled to ``size``), so no autoencoder is involved. VDT (Lu et al. 2023,
arXiv 2305.13311) claims token concatenation is best and converges fastest.

Shapes: videos [N, 3, T, H, W] float in [-1, 1]; results are JSON-able dicts (see ``run_ablation``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass

import numpy as np
import torch

from sora_mini.config import scale_preset, step_seed
from sora_mini.convert import model_to_video
from sora_mini.models.conditioning import FRAME_CONDITIONING
from sora_mini.models.video_dit import VideoDiT

ABLATION_MODES = tuple(m for m in FRAME_CONDITIONING if m != "none")
VDT_CLAIM = ("VDT (Lu et al. 2023, arXiv 2305.13311): token concatenation conditions better than "
             "AdaLN and cross-attention and converges fastest")


@dataclass(frozen=True)
class AblationConfig:
    """Everything one run of the ablation depends on (stored with its results)."""

    size: tuple[int, int] = (16, 16)
    frames: int = 8
    cond_frames: int = 4
    patch_size: tuple[int, int, int] = (1, 4, 4)
    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    steps: int = 12
    batch_size: int = 8
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    train_videos: int = 64
    eval_videos: int = 8
    sample_steps: int = 4
    modes: tuple[str, ...] = ABLATION_MODES
    precision: str = "bf16"
    ema_decay: float | None = None  # sample from an EMA of the weights (with warmup) when set

    @classmethod
    def from_scale(cls, scale: str = "tiny", **overrides) -> AblationConfig:
        """The preset of ``scale`` (``tiny`` / ``small`` / ``base``), with field overrides."""
        return scale_preset(PRESETS, scale, **overrides)  # a ScaleConfig is taken by its name


PRESETS = {
    "tiny": AblationConfig(size=(16, 16), hidden_size=32, depth=2, steps=8, batch_size=4, seeds=(0, 1, 2),
                           train_videos=32, eval_videos=3, sample_steps=3),
    # small: 2 seeds of 1000 steps. Measured with 3 seeds: 24 min on a 2-core CPU (15 arms, ~96 s
    # each), so 10 arms take about 16 min; seeds 0 and 1 train exactly as they did then.
    "small": AblationConfig(size=(16, 16), hidden_size=64, depth=4, steps=1000, batch_size=16,
                            seeds=(0, 1), train_videos=1024, eval_videos=24, sample_steps=16),
    "base": AblationConfig(size=(32, 32), hidden_size=256, depth=8, steps=5000, batch_size=32,
                           seeds=(0, 1, 2), train_videos=8192, eval_videos=128, sample_steps=32),
}


# ----------------------------------------------------------------------------------------------
# Data and scores
# ----------------------------------------------------------------------------------------------
def world_clips(n: int, seed: int, size: tuple[int, int], frames: int):
    """``n`` world videos [n, 3, T, H, W] in [-1, 1] and their scene specs."""
    from sora_mini.world.datasets import WorldDataset

    ds = WorldDataset(n, seed=seed, sizes=(tuple(size),), frames=(frames,), captions=False)
    items = [ds[i] for i in range(n)]
    return torch.stack([it["video"] for it in items]), [it["spec"] for it in items]


def world_scores(video: np.ndarray, spec) -> dict[str, float]:
    """The evaluator's scores (``sora_mini.evaluate.evaluate``) of one uint8 video against its spec.

    ``physics`` and ``adherence`` (overall) as the evaluator gives them, ``motion_adherence`` (its
    motion attributes only: what the generated frames decide) and ``consistency`` (objects keep
    colour, shape, size and do not flicker). All in [0, 1]; a score the evaluator cannot give
    (no object found) counts 0. The given frames are part of the video, so the shape / colour /
    start-region attributes mostly reflect them.
    """
    from sora_mini.evaluate import evaluate
    from sora_mini.evaluate.metrics import MOTION_ATTRIBUTES

    s = evaluate(video, spec)
    attrs = s["adherence"]["attributes"]
    motion = [attrs[a] for a in MOTION_ATTRIBUTES if attrs.get(a) is not None]
    score = lambda v: 0.0 if v is None else float(v)
    return {"physics": score(s["physics"]["score"]), "adherence": score(s["adherence"]["overall"]),
            "motion_adherence": float(np.mean(motion)) if motion else 0.0,
            "consistency": score(s["consistency"]["score"])}


def prediction_scores(pred: torch.Tensor, truth: torch.Tensor, specs, first: int) -> dict[str, float]:
    """Mean PSNR (per frame, capped at the evaluator's ``PSNR_CAP_DB``) / SSIM over frames
    ``first..T-1`` and mean world scores over the videos."""
    from sora_mini.evaluate.image_metrics import psnr, ssim

    rows = []
    for p, g, spec in zip(pred, truth, specs):
        pu, gu = model_to_video(p), model_to_video(g)
        rows.append({"psnr": float(np.mean(psnr(pu[first:], gu[first:]))),
                     "ssim": float(np.mean(ssim(pu[first:], gu[first:]))), **world_scores(pu, spec)})
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


# ----------------------------------------------------------------------------------------------
# One arm: train, then sample and score
# ----------------------------------------------------------------------------------------------
def build_arm(mode: str, acfg: AblationConfig) -> VideoDiT:
    return VideoDiT(in_channels=3, patch_size=acfg.patch_size, hidden_size=acfg.hidden_size, depth=acfg.depth,
                    num_heads=acfg.num_heads, attention="full", frame_cond=mode)


def frame_mask(batch: int, frames: int, given: int) -> torch.Tensor:
    """[B, T] bool, True = generate (the diffusion objective's convention): the first ``given`` are clean."""
    mask = torch.ones(batch, frames, dtype=torch.bool)
    mask[:, :given] = False
    return mask


def train_arm(mode: str, seed: int, acfg: AblationConfig, videos: torch.Tensor, progress: bool = False,
              device="cpu"):
    """Train one way from scratch on ``device``; returns (the model to sample from, loss per step,
    seconds). The model holds the EMA weights when ``acfg.ema_decay`` is set."""
    from sora_mini.diffusion import FlowMatching
    from sora_mini.train.loop import Trainer, TrainerConfig

    torch.manual_seed(seed)
    model = build_arm(mode, acfg)
    objective = FlowMatching()
    mask = frame_mask(acfg.batch_size, acfg.frames, acfg.cond_frames)

    def data(step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(step_seed(seed, step))
        return videos[torch.randint(len(videos), (acfg.batch_size,), generator=g)]

    def loss_fn(m, x0):
        g = torch.Generator().manual_seed(seed * 7919 + int(trainer.step))
        m_gen = mask.to(x0.device)
        loss = objective.training_loss(m, x0, {"cond": x0, "cond_frames": ~m_gen}, mask=m_gen, generator=g)
        return loss, {}

    tcfg = TrainerConfig(steps=acfg.steps, lr=acfg.lr, warmup_steps=min(50, acfg.steps // 10),
                         precision=acfg.precision, ema_decay=acfg.ema_decay, log_every=1, progress=progress,
                         desc=f"{mode} s{seed}")
    trainer = Trainer(model, loss_fn, data, tcfg, device=device)
    t0 = time.perf_counter()
    history = trainer.fit()
    return trainer.eval_model(), [row["loss"] for row in history], time.perf_counter() - t0


@torch.no_grad()
def predict(model: VideoDiT, videos: torch.Tensor, given: int, steps: int, seed: int = 0,
            precision: str = "bf16") -> torch.Tensor:
    """Generate frames ``given..T-1`` of ``videos`` [N, 3, T, H, W] from the first ``given`` (Euler flow),
    on the model's device (autocast as ``autocast_for`` gives it there); returns them on the CPU."""
    from sora_mini.diffusion import FlowMatching, FrameCondition, sample
    from sora_mini.train.device import autocast_for

    objective = FlowMatching()
    model.eval()
    device = next(model.parameters()).device
    videos = videos.to(device)
    mask = frame_mask(len(videos), videos.shape[2], given).to(device)
    g = torch.Generator().manual_seed(10_000 + seed)
    with autocast_for(device, precision):
        out = sample(model, objective, tuple(videos.shape), steps=steps,
                     cond={"cond": videos, "cond_frames": ~mask}, frames=FrameCondition(videos, mask),
                     generator=g, progress=False)
    return out.float().cpu()


def baselines(evals: torch.Tensor, specs, k: int) -> dict:
    """Scores of the true videos (the ceiling); of the trivial predictor that holds the last given
    frame, given ``k`` frames (``copy_last_frame``) and given 1 (``copy_first_frame``); of the
    given frames followed by Gaussian noise (``noise_after_given``, ``noise_after_first``): what an
    untrained model samples (its velocity is 0, so the starting noise stays), the floor; and of
    noise alone (``pure_noise``, every frame)."""
    out = {"truth": prediction_scores(evals, evals, specs, k)}
    g = torch.Generator().manual_seed(0)
    out["pure_noise"] = prediction_scores(torch.randn(evals.shape, generator=g), evals, specs, k)
    for kind, given in (("given", k), ("first", 1)):
        copy, noisy = evals.clone(), evals.clone()
        copy[:, :, given:] = evals[:, :, given - 1: given]
        noisy[:, :, given:] = torch.randn(noisy[:, :, given:].shape, generator=g)
        out["copy_last_frame" if kind == "given" else "copy_first_frame"] = prediction_scores(copy, evals, specs, k)
        out[f"noise_after_{kind}"] = prediction_scores(noisy, evals, specs, k)
    return out


def run_ablation(acfg: AblationConfig, progress: bool = True, on_arm=None, device="cpu") -> dict:
    """Every way x every seed: loss curve, train time, scores with ``cond_frames`` and with 1 frame.

    Returns {"config", "arms": {mode: [per-seed dicts]}, "truth" / "copy_last_frame" /
    "copy_first_frame" / "noise_after_given" / "noise_after_first" / "pure_noise" (``baselines``),
    "samples": uint8 [T, H, W, 3] lists, "claim"}.
    """
    from tqdm.auto import tqdm

    train, _ = world_clips(acfg.train_videos, 0, acfg.size, acfg.frames)
    evals, specs = world_clips(acfg.eval_videos, 999, acfg.size, acfg.frames)
    k = acfg.cond_frames
    results = {"config": dataclasses.asdict(acfg), "arms": {}, "claim": VDT_CLAIM,
               "samples": {"truth": model_to_video(evals[0]).tolist()}, **baselines(evals, specs, k)}
    runs = [(m, s) for m in acfg.modes for s in acfg.seeds]
    for mode, seed in tqdm(runs, desc="ablation arms", disable=not progress):
        model, losses, secs = train_arm(mode, seed, acfg, train, device=device)
        row = {"seed": seed, "loss": losses, "train_s": round(secs, 2),
               "params": sum(p.numel() for p in model.parameters())}
        pred = predict(model, evals, k, acfg.sample_steps, seed, acfg.precision)
        one = predict(model, evals, 1, acfg.sample_steps, seed, acfg.precision)
        row.update(prediction_scores(pred, evals, specs, k))
        row.update({f"{name}_1frame": v for name, v in prediction_scores(one, evals, specs, k).items()})
        results["arms"].setdefault(mode, []).append(row)
        if on_arm is not None:  # e.g. print each arm's scores as it finishes
            on_arm(mode, seed, row)
        if seed == acfg.seeds[0]:  # one example video per way, for the notebook to show
            results["samples"][mode] = model_to_video(pred[0]).tolist()
            results["samples"][mode + "_1frame"] = model_to_video(one[0]).tolist()
    return results


def summarize(results: dict) -> list[dict]:
    """One row per way: mean and spread (std over seeds) of every score, final loss, train time."""
    rows = []
    for mode, runs in results["arms"].items():
        row = {"mode": mode, "seeds": len(runs)}
        keys = [k for k in runs[0] if k not in ("seed", "loss", "params")]
        for key in keys:
            vals = np.array([r[key] for r in runs], dtype=float)
            row[key] = float(np.mean(vals))
            row[key + "_std"] = float(np.std(vals))
        tail = max(1, len(runs[0]["loss"]) // 5)  # the mean loss of the last fifth of training
        finals = [float(np.mean(r["loss"][-tail:])) for r in runs]
        row["final_loss"], row["final_loss_std"] = float(np.mean(finals)), float(np.std(finals))
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Reading the results: tables and gaps against the spread
# ----------------------------------------------------------------------------------------------
METRICS = (("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"), ("physics", "physics", "{:.2f}"),
           ("adherence", "adherence", "{:.2f}"), ("motion_adherence", "motion adherence", "{:.2f}"),
           ("consistency", "consistency", "{:.2f}"))
REFERENCE_ROWS = {None: ("truth", "copy_last_frame", "noise_after_given", "pure_noise"),
                  1: ("truth", "copy_first_frame", "noise_after_first", "pure_noise")}


def results_table(results: dict, given: int | None = None) -> str:
    """The ablation as a markdown table: a row per way (mean ± std over seeds, best PSNR first), then
    the reference rows (truth, copy, given frames + noise, noise). ``given=None``: with the trained number
    of given frames (plus final loss and train time); ``given=1``: continuing from 1 frame."""
    if given not in REFERENCE_ROWS:
        raise ValueError(f"given={given!r}: use None (as trained) or 1")
    sfx = "" if given is None else "_1frame"
    pm = lambda r, key, fmt: f"{fmt.format(r[key])} ± {fmt.format(r[key + '_std'])}"
    extra = [] if given else [("final loss", lambda r: pm(r, "final_loss", "{:.3f}")),
                              ("train s", lambda r: f"{r['train_s']:.1f}")]
    cols = [name for _, name, _ in METRICS] + [name for name, _ in extra]
    lines = ["| way | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for r in sorted(summarize(results), key=lambda r: -r["psnr" + sfx]):
        cells = [pm(r, key + sfx, fmt) for key, _, fmt in METRICS] + [f(r) for _, f in extra]
        lines.append(f"| {r['mode']} | " + " | ".join(cells) + " |")
    for name in REFERENCE_ROWS[given]:
        if name in results:  # results saved before a reference row existed lack it
            cells = [fmt.format(results[name][key]) for key, _, fmt in METRICS] + [""] * len(extra)
            lines.append(f"| *{name.replace('_', ' ')}* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap(summary: list[dict], a: str, b: str, key: str = "psnr") -> dict:
    """Mean of ``key`` for way ``a`` minus way ``b``, against the spread (the sum of their std over
    seeds): ``separated`` when |gap| > spread, i.e. their mean ± std intervals do not overlap."""
    rows = {r["mode"]: r for r in summary}
    d = rows[a][key] - rows[b][key]
    spread = rows[a][key + "_std"] + rows[b][key + "_std"]
    return {"a": a, "b": b, "key": key, "gap": d, "spread": spread, "separated": abs(d) > spread}


def leader(summary: list[dict], key: str = "psnr", higher: bool = True) -> dict:
    """The way with the best mean ``key`` and its ``gap`` to the runner-up: name it the winner only
    when ``separated`` is True (otherwise the top two are within the spread)."""
    order = sorted(summary, key=lambda r: r[key], reverse=higher)
    return gap(summary, order[0]["mode"], order[1]["mode"], key)


SCORING_VERSION = 2  # bump when the scores change (the evaluator, the baselines): results recompute


def ablation_dir(scale, *, run_root="runs", **overrides):
    """``<run_root>/<scale>/ablation_conditioning_v<N>-<hash>``: the hash covers the whole
    ``AblationConfig``, ``N`` the way results are scored (``SCORING_VERSION``)."""
    from sora_mini.artifacts import part_dir

    acfg = AblationConfig.from_scale(scale, **overrides)
    return part_dir(run_root, getattr(scale, "name", scale), f"ablation_conditioning_v{SCORING_VERSION}", acfg)


def load_or_run_ablation(scale, *, run_root="runs", device="cpu", retrain: bool = False,
                         progress: bool = True, on_arm=None, **overrides) -> dict:
    """The ablation results of a scale (``AblationConfig.from_scale(scale, **overrides)``), from
    ``ablation_dir(...)/results.json`` or computed on ``device`` and saved there (atomically)."""
    from pathlib import Path

    from sora_mini.checkpoint import atomic_write

    acfg = AblationConfig.from_scale(scale, **overrides)
    path = ablation_dir(scale, run_root=run_root, **overrides) / "results.json"
    if path.exists() and not retrain:
        return json.loads(path.read_text())
    results = run_ablation(acfg, progress=progress, on_arm=on_arm, device=device)
    text = json.dumps(results)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return results
