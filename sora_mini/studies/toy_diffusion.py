"""Diffusion you can train in seconds: 2D point clouds, tiny world images, and small denoisers for them.

Shapes: points [N, 2]; images [N, 3, H, W] in [-1, 1] with colour labels [N] (an index into the
world's palette, ``num_classes`` = the null label for classifier-free guidance). The denoisers are
backbones on DiT's 0..1000 timestep scale: ``model(x_t, t_scaled, y=labels)``; they declare
``timestep_range``, so the objective converts its t for them (pass them as they are). Used by notebook 03.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sora_mini.convert import images_to_model
from sora_mini.diffusion.objective import DIT_TIMESTEP_MAX, check_model_timesteps
from sora_mini.models.layers import timestep_embedding
from sora_mini.world.render import render
from sora_mini.world.sample import sample_spec, spec_seed
from sora_mini.world.spec import PALETTE


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
    if scale not in PRESETS:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(PRESETS)}")
    return dataclasses.replace(PRESETS[scale], **overrides)


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
# Denoisers
# ----------------------------------------------------------------------------------------------
class ToyMLP(nn.Module):
    """A residual MLP for points: x + embed(t) + embed(label) -> prediction. Shapes: [B, D] -> [B, D]."""

    timestep_range = (0.0, DIT_TIMESTEP_MAX)  # the objective converts its t into this

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes
        self.inp = nn.Linear(dim, hidden)
        self.t_proj = nn.Sequential(nn.Linear(64, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.label = nn.Embedding(num_classes + 1, hidden) if num_classes else None  # +1: null
        self.blocks = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x, t, y=None):
        t = check_model_timesteps(t, self.timestep_range, "ToyMLP")
        h = self.inp(x) + self.t_proj(timestep_embedding(t, 64))  # [B, hidden]
        if self.label is not None:
            h = h + self.label(torch.full_like(t, self.num_classes, dtype=torch.long) if y is None else y)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class _ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with a FiLM scale/shift from the embedding (as in ADM / DDPM)."""

    def __init__(self, channels: int, emb: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.film = nn.Linear(emb, 2 * channels)
        self.norm2, self.conv2 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, e):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(e)[:, :, None, None].chunk(2, dim=1)  # [B, C, 1, 1] each
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(F.silu(h))


class TinyUNet(nn.Module):
    """A two-level conv U-Net for small images, conditioned on t and a colour label.

    Shapes: x [B, 3, H, W] (H, W even), t [B] (0..1000 scale), y [B] -> [B, 3, H, W].
    """

    timestep_range = (0.0, DIT_TIMESTEP_MAX)  # the objective converts its t into this

    def __init__(self, channels: int = 32, num_classes: int = len(COLOURS), emb: int = 128):
        super().__init__()
        c = channels
        self.num_classes = num_classes
        self.t_proj = nn.Sequential(nn.Linear(64, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.label = nn.Embedding(num_classes + 1, emb)  # index num_classes = null (unconditional)
        self.inp = nn.Conv2d(3, c, 3, padding=1)
        self.enc = _ResBlock(c, emb)
        self.down = nn.Conv2d(c, 2 * c, 3, stride=2, padding=1)
        self.mid = nn.ModuleList([_ResBlock(2 * c, emb), _ResBlock(2 * c, emb)])
        self.up = nn.Conv2d(2 * c, c, 3, padding=1)
        self.dec = _ResBlock(c, emb)
        self.out = nn.Sequential(nn.GroupNorm(8, c), nn.SiLU(), nn.Conv2d(c, 3, 3, padding=1))

    def forward(self, x, t, y=None):
        if y is None:
            y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
        t = check_model_timesteps(t, self.timestep_range, "TinyUNet")
        e = self.t_proj(timestep_embedding(t, 64)) + self.label(y)  # [B, emb]
        h1 = self.enc(self.inp(x), e)  # [B, c, H, W]
        h = self.down(h1)  # [B, 2c, H/2, W/2]
        for block in self.mid:
            h = block(h, e)
        h = self.up(F.interpolate(h, scale_factor=2, mode="nearest")) + h1  # [B, c, H, W]
        return self.out(self.dec(h, e))


# ----------------------------------------------------------------------------------------------
# Training (through the shared Trainer) and evaluation
# ----------------------------------------------------------------------------------------------
def train_denoiser(model: nn.Module, objective, data, *, steps: int, lr: float = 2e-3,
                   cond_keys=("y",), ckpt_path=None, desc: str = "train", progress: bool = True,
                   log_every: int = 25) -> list[dict]:
    """Train ``model`` on ``objective.training_loss`` with ``sora_mini.train.loop.Trainer`` (fp32).

    ``data(step) -> {"x": [B, ...], "y": [B]}``. With ``ckpt_path`` the run resumes, or is skipped
    when finished. Returns the logged history rows (step, loss, ...).
    """
    from sora_mini.diffusion.objective import make_loss_fn
    from sora_mini.train.loop import Trainer, TrainerConfig

    cfg = TrainerConfig(steps=steps, lr=lr, precision="fp32", warmup_steps=min(50, steps // 10),
                        log_every=log_every, progress=progress, desc=desc, grad_clip=1.0)
    loss_fn = make_loss_fn(objective, x_key="x", cond_keys=cond_keys)
    return Trainer(model, loss_fn, data, cfg, ckpt_path=ckpt_path).fit()


def image_data(images: torch.Tensor, labels: torch.Tensor, batch_size: int, *, p_uncond: float = 0.15,
               seed: int = 0):
    """``data(step)`` for the Trainer: a random batch of images with labels dropped for CFG."""
    null = len(COLOURS)

    def data(step: int) -> dict:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, len(images), (batch_size,), generator=g)
        flip = torch.rand(batch_size, generator=g) < 0.5  # horizontal flips: the world is symmetric
        x = torch.where(flip[:, None, None, None], images[idx].flip(-1), images[idx])
        return {"x": x, "y": drop_labels(labels[idx], p_uncond, null, g)}

    return data


def get_or_train_image_denoiser(run: str | Path, d: ToyDiffusionConfig, objective, *, progress: bool = True,
                                seed: int = 0):
    """The colour-conditional image denoiser of notebook 03 for ``objective`` (trained if missing).

    ``d`` is the study's config (``toy_config(scale)``). Returns
    ``(model in eval mode, history, (images, labels))``.
    """
    images, labels = world_images(d.image_train_size, d.image_size, seed=seed)
    torch.manual_seed(seed)
    model = TinyUNet(channels=d.image_channels)
    tag = objective.kind + (f"_{objective.schedule.beta_schedule}_{objective.prediction}"
                            if objective.kind == "gaussian" else "")
    ckpt = Path(run) / "diffusion" / f"images_{tag}_{d.image_size}px_c{d.image_channels}"
    history = train_denoiser(model, objective, image_data(images, labels, d.image_batch_size, seed=seed),
                             steps=d.image_train_steps, lr=d.image_lr, ckpt_path=ckpt,
                             desc=f"{objective.kind} images", progress=progress)
    return model.eval(), history, (images, labels)


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
