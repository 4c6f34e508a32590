"""Does spatio-temporal (3D causal) compression flicker less than per-frame (2D) compression at one
latent size? Trains the KL autoencoders of a scale's preset (or variants of it) and measures them on
held-out world videos: PSNR, SSIM, flicker, where the flicker is, and flicker under latent noise.

    sora-mini study compression-flicker --scale small              # the preset, 8000 steps
    sora-mini study compression-flicker --scale small --steps 16000
    sora-mini study compression-flicker --kinds 3d_kl --set temporal_upsample=depth_to_time

Each model trains on one thread (``--threads``): on a 2-core machine run at most two at once, since
more torch processes than cores slow each other down many times over. Checkpoints and a JSON of the
figures go to ``runs/experiments/compression_flicker/<scale>/autoencoder_<kind>-<hash>/``, one
folder per whole config (``artifacts.get_autoencoder``); a model already trained there with the same
settings is loaded, not trained again.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from sora_mini.evaluate.intervals import bootstrap_interval, paired_gap  # noqa: F401  (notebook 01)

SIGMAS = (0.0, 0.05, 0.1, 0.2, 0.4)


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def run(scale: str, kind: str, steps: int | None, overrides: dict, videos: int, out: Path,
        device: str = "cpu") -> dict:
    """Train (or load) ``kind`` at ``scale`` with ``CompressionConfig`` ``overrides`` into its folder
    under ``out`` and measure it on ``videos`` held-out world videos; the figures also go to
    ``<folder>/figures.json``."""
    from sora_mini.artifacts import autoencoder_dir, get_autoencoder, training_info
    from sora_mini.checkpoint import atomic_write
    from sora_mini.compression.data import eval_videos
    from sora_mini.compression.metrics import (
        evaluate_autoencoder,
        latent_noise_flicker,
        mean_flicker_breakdown,
    )
    from sora_mini.config import get_config

    cfg = get_config(scale)
    cfg = dataclasses.replace(cfg, compression=dataclasses.replace(cfg.compression, **overrides))
    training = {} if steps is None else {"steps": steps}
    model = get_autoencoder(cfg, kind=kind, run_root=out, device=device, progress=True, **training)
    folder = autoencoder_dir(cfg, kind=kind, run_root=out, **training)
    info = training_info(folder)
    held_out = eval_videos(cfg.world, videos)
    moving = [v for v in held_out if v.shape[1] >= 2]
    res = evaluate_autoencoder(model, held_out, device=device)
    parts = mean_flicker_breakdown(model, moving, device=device)
    res.update({f"flicker_{k}": parts[k] for k in ("static_share", "within", "across")})
    res["latent_noise"] = [latent_noise_flicker(model, moving, s, device=device) for s in SIGMAS]
    res.update(kind=kind, steps=info["steps"], overrides=overrides, train_seconds=info["train_seconds"],
               parameters=sum(p.numel() for p in model.parameters()), folder=str(folder))
    text = json.dumps(res, indent=1)
    atomic_write(folder / "figures.json", lambda tmp: Path(tmp).write_text(text))
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="sora-mini study compression-flicker",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="small")
    p.add_argument("--kinds", nargs="+", default=["3d_kl", "2d_kl"])
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override CompressionConfig fields, e.g. temporal_upsample=depth_to_time")
    p.add_argument("--videos", type=int, default=64, help="held-out videos to measure on")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="where to train and measure (cpu, cuda, mps)")
    p.add_argument("--out", default="runs/experiments/compression_flicker")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    overrides = {}
    for item in args.set:
        if "=" not in item:
            p.error(f"--set takes FIELD=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key] = _value(value)
    rows = [run(args.scale, kind, args.steps, overrides, args.videos, Path(args.out), args.device)
            for kind in args.kinds]
    print(f"\n{'kind':7s} {'steps':>6s} {'PSNR':>6s} {'SSIM':>6s} {'flicker':>8s} {'still':>6s} "
          + " ".join(f"{'σ=' + str(s):>7s}" for s in SIGMAS[1:]))
    for r in rows:
        print(f"{r['kind']:7s} {r['steps']:6d} {r['psnr']:6.2f} {r['ssim']:6.3f} {r['flicker']:8.3f} "
              f"{r['flicker_static_share']:6.0%} " + " ".join(f"{n['flicker']:7.3f}" for n in r["latent_noise"][1:]))


if __name__ == "__main__":
    main()
