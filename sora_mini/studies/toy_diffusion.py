"""Diffusion you can train in seconds: 2D point clouds, tiny world images, and small denoisers for them.

Shapes: points [N, 2]; images [N, 3, H, W] in [-1, 1] with colour labels [N] (an index into the
world's palette, ``num_classes`` = the null label for classifier-free guidance). The denoisers
(``ToyMLP``, ``TinyUNet``, from ``toy_denoisers``) are backbones on DiT's 0..1000 timestep scale:
``model(x_t, t_scaled, y=labels)``; they declare ``timestep_range``, so the objective converts its t
for them (pass them as they are). ``train_denoiser`` trains one on any device;
``get_image_denoiser(scale, objective=...)`` gets or trains notebook 03's image denoiser. Used by
notebook 03.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sora_mini.config import scale_preset, step_seed
from sora_mini.convert import images_to_model
from sora_mini.studies.toy_denoisers import TinyUNet, TinyUNetConfig, ToyMLP, ToyMLPConfig
from sora_mini.world.render import render
from sora_mini.world.sample import sample_spec, spec_seed
from sora_mini.world.spec import PALETTE

__all__ = ["COLOURS", "ImageDenoiserTraining", "TinyUNet", "TinyUNetConfig", "ToyDiffusionConfig", "ToyMLP",
           "ToyMLPConfig", "chamfer", "class_accuracy", "colour_adherence", "dominant_colours", "drop_labels",
           "gaussian_mixture", "get_image_denoiser", "image_data", "image_denoiser_dir", "mixture_centres",
           "objective_settings", "toy_config", "train_denoiser", "two_moons", "world_images"]


@dataclass(frozen=True)
class ToyDiffusionConfig:
    """Notebook 03's teaching models: 2D point-cloud MLPs and a colour-conditional image UNet."""

    toy_steps: int = 500  # 2D point-cloud MLPs
    toy_batch_size: int = 512
    toy_lr: float = 4e-3
    image_size: int = 16  # one-frame world images, colour-conditional TinyUNet
    image_train_size: int = 512  # rendered training images
    image_channels: int = 16
    image_batch_size: int = 32
    image_train_steps: int = 250
    image_lr: float = 2e-3
    eval_samples: int = 16  # generated images per point of the quality-vs-steps curves


PRESETS = {
    "tiny": ToyDiffusionConfig(),
    "small": ToyDiffusionConfig(toy_steps=3000, toy_batch_size=1024, toy_lr=3e-3, image_size=16,
                                image_train_size=4096, image_channels=32, image_batch_size=48,
                                image_train_steps=1200, image_lr=1e-3, eval_samples=64),
    "base": ToyDiffusionConfig(toy_steps=5000, toy_batch_size=1024, toy_lr=3e-3, image_size=32,
                               image_train_size=16384, image_channels=64, image_batch_size=128,
                               image_train_steps=20000, image_lr=5e-4, eval_samples=256),
}


def toy_config(scale: str = "tiny", **overrides) -> ToyDiffusionConfig:
    """The preset of ``scale`` (``tiny`` / ``small`` / ``base``), with field overrides."""
    return scale_preset(PRESETS, scale, **overrides)


COLOURS = tuple(PALETTE)  # class index -> colour name


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def two_moons(n: int, *, noise: float = 0.06, generator: torch.Generator | None = None) -> torch.Tensor:
    """Two interleaved half circles, centred and scaled to about unit variance. Shapes: -> [n, 2]."""
    u = torch.rand(n, generator=generator) * math.pi
    upper = torch.rand(n, generator=generator) < 0.5
    x = torch.where(upper, torch.cos(u), 1 - torch.cos(u))
    y = torch.where(upper, torch.sin(u), 0.5 - torch.sin(u))
    pts = torch.stack([x - 0.5, y - 0.25], dim=1) * 1.6  # [n, 2]
    return pts + noise * torch.randn(n, 2, generator=generator)


def mixture_centres(num_classes: int = 4, radius: float = 1.5) -> torch.Tensor:
    """The class centres of ``gaussian_mixture``, evenly spaced on a circle. Shapes: -> [K, 2]."""
    angle = 2 * math.pi * torch.arange(num_classes).float() / num_classes
    return radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)


def gaussian_mixture(n: int, *, num_classes: int = 4, radius: float = 1.5, std: float = 0.5,
                     generator: torch.Generator | None = None):
    """Blobs on a circle, one per class (overlapping, so guidance has work to do).

    Shapes: -> (points [n, 2], labels [n] long).
    """
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    centres = mixture_centres(num_classes, radius)[labels]  # [n, 2]
    return centres + std * torch.randn(n, 2, generator=generator), labels


def class_accuracy(points: torch.Tensor, labels: torch.Tensor, num_classes: int = 4,
                   radius: float = 1.5) -> float:
    """Share of points whose nearest mixture centre is their own class's (guidance raises it)."""
    nearest = torch.cdist(points, mixture_centres(num_classes, radius)).argmin(dim=1)  # [n]
    return (nearest == labels).float().mean().item()


def chamfer(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Symmetric mean nearest-neighbour distance between two point clouds (0 = same cloud).

    Shapes: [n, D], [m, D]. One half punishes samples off the data, the other missed data.
    """
    d = torch.cdist(x.float(), ref.float())  # [n, m]
    return 0.5 * (d.min(dim=1).values.mean() + d.min(dim=0).values.mean()).item()


def world_images(n: int, size: int = 16, seed: int = 0):
    """``n`` one-frame world scenes with one still object; labelled by the object's colour.

    Shapes: -> (images float32 [n, 3, size, size] in [-1, 1], labels long [n]).
    """
    images, labels = [], []
    for i in range(n):
        spec = sample_spec(spec_seed(seed, i), max_objects=1, motions=("still",))
        video, _ = render(spec, size, size, 1)  # [1, H, W, 3] uint8
        images.append(video[0])
        labels.append(COLOURS.index(spec.objects[0].color))
    x = images_to_model(np.stack(images))  # [n, 3, H, W]
    return x, torch.tensor(labels)


def drop_labels(labels: torch.Tensor, p: float, null: int, generator=None) -> torch.Tensor:
    """Replace each label by the null label with probability ``p`` (CFG training, Ho & Salimans 2022)."""
    drop = torch.rand(labels.shape, generator=generator) < p
    return torch.where(drop, torch.full_like(labels, null), labels)


# ----------------------------------------------------------------------------------------------
# Training (through the shared Trainer) and evaluation
# ----------------------------------------------------------------------------------------------
def train_denoiser(model: nn.Module, objective, data, *, steps: int, lr: float = 2e-3,
                   cond_keys=("y",), device="cpu", ckpt_path=None, log_path=None, desc: str = "train",
                   progress: bool = True, log_every: int = 25, ema_decay: float | None = None):
    """Train ``model`` on ``objective.training_loss`` with ``sora_mini.train.Trainer`` (fp32) on
    ``device``; returns the fitted trainer (``.history``: the logged rows; ``.eval_model()``: the
    model to sample from, the EMA weights when ``ema_decay`` is set).

    ``data(step) -> {"x": [B, ...], "y": [B]}``. With ``ckpt_path`` the run resumes, or is skipped
    when finished.
    """
    from sora_mini.diffusion.objective import make_loss_fn
    from sora_mini.train.loop import Trainer, TrainerConfig

    cfg = TrainerConfig(steps=steps, lr=lr, precision="fp32", warmup_steps=min(50, steps // 10),
                        log_every=log_every, progress=progress, desc=desc, grad_clip=1.0, ema_decay=ema_decay)
    loss_fn = make_loss_fn(objective, x_key="x", cond_keys=cond_keys)
    trainer = Trainer(model, loss_fn, data, cfg, device=device, ckpt_path=ckpt_path, log_path=log_path)
    trainer.fit()
    return trainer


def image_data(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, p_uncond: float = 0.15,
               seed: int = 0):
    """``data(step)`` for the Trainer: a random batch of images with labels dropped for CFG."""
    null = len(COLOURS)

    def data(step: int) -> dict:
        g = torch.Generator().manual_seed(step_seed(seed, step))
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        flip = torch.rand(batch_size, generator=g) < 0.5  # horizontal flips: the world is symmetric
        x = torch.where(flip[:, None, None, None], images[idx].flip(-1), images[idx])
        return {"x": x, "y": drop_labels(labels[idx], p_uncond, null, g)}

    return data


# ----------------------------------------------------------------------------------------------
# The image denoiser of notebook 03, get-or-train
# ----------------------------------------------------------------------------------------------
def objective_settings(objective) -> str:
    """Every plain setting of a diffusion objective and its submodules (e.g. the noise schedule), as
    ``"Class(name=value, ...)"``: the objective's part of a denoiser's cache key."""
    items = {}

    def walk(prefix: str, module: nn.Module) -> None:
        for name, value in vars(module).items():
            if not name.startswith("_") and name != "training" and isinstance(value, (bool, int, float, str)):
                items[prefix + name] = value
        for name, child in module.named_children():
            walk(f"{prefix}{name}.", child)

    walk("", objective)
    return f"{type(objective).__name__}(" + ", ".join(f"{k}={items[k]!r}" for k in sorted(items)) + ")"


@dataclass(frozen=True)
class ImageDenoiserTraining:
    """How notebook 03's image denoiser is trained (with ``TinyUNetConfig``, its cache key)."""

    objective: str  # objective_settings(objective)
    image_size: int = 16
    train_images: int = 512
    batch_size: int = 32
    steps: int = 250
    lr: float = 2e-3
    p_uncond: float = 0.15
    seed: int = 0


def _image_denoiser_parts(scale: str, objective, seed: int, overrides: dict):
    d = toy_config(scale, **overrides)
    model_cfg = TinyUNetConfig(channels=d.image_channels)
    training = ImageDenoiserTraining(objective=objective_settings(objective), image_size=d.image_size,
                                     train_images=d.image_train_size, batch_size=d.image_batch_size,
                                     steps=d.image_train_steps, lr=d.image_lr, seed=seed)
    return model_cfg, training


def image_denoiser_dir(scale: str, *, objective, run_root="runs", seed: int = 0, **overrides) -> Path:
    """``<run_root>/<scale>/image_denoiser_<kind>-<hash>``: the hash covers the U-Net config, the
    objective's settings and the training recipe (``overrides``: ``ToyDiffusionConfig`` fields)."""
    from sora_mini.artifacts import part_dir

    model_cfg, training = _image_denoiser_parts(scale, objective, seed, overrides)
    return part_dir(run_root, scale, f"image_denoiser_{objective.kind}", model_cfg, training)


def get_image_denoiser(scale: str, *, objective, run_root="runs", device="cpu", retrain: bool = False,
                       progress: bool = True, seed: int = 0, **overrides) -> TinyUNet:
    """The colour-conditional image denoiser of notebook 03 for ``objective`` (a ``GaussianDiffusion``
    or ``FlowMatching``), loaded from :func:`image_denoiser_dir` or trained there; eval mode, on
    ``device``. Its training images are ``world_images(d.image_train_size, d.image_size, seed)`` and
    its loss curve ``artifacts.training_log(image_denoiser_dir(...))``.
    """
    from sora_mini.artifacts import clear_part, is_complete, write_training_info

    folder = image_denoiser_dir(scale, objective=objective, run_root=run_root, seed=seed, **overrides)
    if retrain:
        clear_part(folder)
    if not is_complete(folder):
        model_cfg, training = _image_denoiser_parts(scale, objective, seed, overrides)
        images, labels = world_images(training.train_images, training.image_size, seed=seed)
        torch.manual_seed(seed)
        model = TinyUNet(model_cfg)
        t0 = time.perf_counter()
        data = image_data(images, labels, training.batch_size, p_uncond=training.p_uncond, seed=seed)
        trainer = train_denoiser(model, objective, data, steps=training.steps, lr=training.lr, device=device,
                                 ckpt_path=folder / "trainer", log_path=folder / "log.jsonl",
                                 desc=f"{objective.kind} images", progress=progress)
        trainer.eval_model().save_pretrained(folder)
        write_training_info(folder, {"scale": scale, "kind": f"image_denoiser_{objective.kind}",
                                     "steps": training.steps, "seed": seed, "device": str(device),
                                     "train_seconds": round(time.perf_counter() - t0, 1),
                                     "final": trainer.history[-1] if trainer.history else {},
                                     "training": dataclasses.asdict(training)})
    return TinyUNet.from_pretrained(folder, device=device)


def dominant_colours(images: np.ndarray, min_distance: float = 60.0) -> list[str | None]:
    """A lenient proxy for blurry samples: the palette colour nearest to each image's foreground.

    Shapes: uint8 [N, H, W, 3] -> N names (None: nothing stands out from the background). The
    background is the median border pixel; the foreground, pixels farther than ``min_distance``
    from it; its colour, the mean of the quarter farthest from the background.
    """
    palette = np.array(list(PALETTE.values()), dtype=np.float32)  # [K, 3]
    out: list[str | None] = []
    for img in images.astype(np.float32):
        border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])  # [4H-ish, 3]
        dist = np.linalg.norm(img - np.median(border, axis=0), axis=-1)  # [H, W]
        fg = dist[dist > min_distance]
        if fg.size == 0:
            out.append(None)
            continue
        colour = img[dist >= np.quantile(fg, 0.75)].mean(axis=0)  # [3]
        out.append(COLOURS[int(np.linalg.norm(palette - colour, axis=1).argmin())])
    return out


def colour_adherence(images: np.ndarray, labels) -> dict:
    """Does each generated image show the colour that was asked for? Two readings.

    Shapes: images uint8 [N, H, W, 3], labels [N]. ``adherence``: the world's ``VideoAnalyzer``
    finds exactly one object, of the asked colour (strict: a blurry or noisy object is not found).
    ``colour_match``: ``dominant_colours`` names the asked colour (lenient proxy). ``any_object``:
    the analyzer finds some object.
    """
    from sora_mini.evaluate.analyzer import VideoAnalyzer

    analyzer = VideoAnalyzer()
    asked = [COLOURS[int(label)] for label in labels]
    hits, found = 0, 0
    for image, colour in zip(images, asked):
        try:
            colours = [o.color for o in analyzer.analyze(image).objects]
        except (IndexError, ValueError):  # garbled pixels can defeat the analyzer: nothing found
            colours = []
        hits += colours == [colour]
        found += bool(colours)
    matches = sum(d == c for d, c in zip(dominant_colours(images), asked))
    n = max(len(images), 1)
    return {"adherence": hits / n, "colour_match": matches / n, "any_object": found / n}
