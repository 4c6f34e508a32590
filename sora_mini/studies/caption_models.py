"""Notebook 05's caption-conditioning study, its parts: the config and presets
(:class:`CaptionStudyConfig`), the model (a DiT conditioned through a text encoder and a null
condition, :class:`CaptionedDiT`) and one arm of an experiment (train at the study's compute,
generate held-out prompts, score them with the evaluator). The experiments that compare arms, and
their cached results, are :mod:`sora_mini.studies.caption_conditioning`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sora_mini.config import scale_preset
from sora_mini.text.embedding import TextEmbedding, masked_mean
from sora_mini.text.null import NullCondition
from sora_mini.train.video import (
    MaskRatios,
    VideoBatches,
    VideoDataConfig,
    VideoRecipe,
    flow_objective,
    packed_flow_loss,
    time_shift,
)

EXPERIMENTS = ("encoders", "caption_detail", "null_guidance")
ENCODERS = ("minilm", "clip", "transformer")
NO_MASKS = MaskRatios(head=0, head_k=0, tail_k=0, head_tail=0, interleaved=0, single=0, block=0)
HELD_OUT_SEED = 1_000_003  # held-out prompts come from scenes of these seeds, never trained on


@dataclass(frozen=True)
class CaptionStudyConfig:
    """Everything the experiments depend on (stored with the results; the cache hashes it)."""

    size: tuple[int, int] = (32, 32)
    videos: int = 256  # training images
    max_objects: int = 2
    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    steps: int = 200
    tokens_per_step: int = 256
    pack_length: int = 64
    lr: float = 1e-3
    caption_dropout: float = 0.1
    detailed_share: float = 1.0  # of the encoders / null experiments (caption_detail sets 0 and 1)
    seeds: tuple[int, ...] = (0, 1)
    eval_prompts: int = 16
    sample_steps: int = 10
    guidance_scale: float = 3.0  # of the encoders and caption_detail experiments
    guidance_scales: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0)
    diversity_samples: int = 4  # samples per prompt for diversity
    null_encoder: str = "minilm"  # the text encoder of the null-condition experiment

    def __post_init__(self):
        if len(self.seeds) < 1 or self.eval_prompts < 1 or self.diversity_samples < 2:
            raise ValueError("need at least one seed, one eval prompt and two diversity samples")
        if self.null_encoder not in ENCODERS:
            raise ValueError(f"null_encoder {self.null_encoder!r}: choose one of {', '.join(ENCODERS)}")

    @classmethod
    def from_scale(cls, scale="tiny", **overrides) -> CaptionStudyConfig:
        """The preset of ``scale`` (``tiny`` / ``small`` / ``base``), with field overrides."""
        return scale_preset(PRESETS, scale, **overrides)


PRESETS = {
    # tiny: every path in seconds; the numbers mean nothing
    "tiny": CaptionStudyConfig(videos=16, max_objects=1, hidden_size=32, depth=1, num_heads=2, steps=4,
                               tokens_per_step=64, eval_prompts=2, sample_steps=2, guidance_scales=(1.0, 3.0),
                               diversity_samples=2),
    # small: 600 steps of 128 images (0.2 s a step on a 2-core AVX2 CPU, about 2 min an arm). 300 steps
    # of 16 images (the preset before) left every arm near chance (adherence 0.06-0.13); at 600 x 128
    # the detailed-caption arm reads background 0.67 and colour 0.46 (seed 0)
    "small": CaptionStudyConfig(videos=4096, max_objects=2, hidden_size=96, depth=3, num_heads=4, steps=600,
                                tokens_per_step=2048, eval_prompts=24, sample_steps=12),
    "base": CaptionStudyConfig(size=(64, 64), videos=16384, max_objects=3, hidden_size=256, depth=8,
                               num_heads=8, steps=5000, tokens_per_step=2048, pack_length=256,
                               eval_prompts=128, sample_steps=30, seeds=(0, 1, 2)),
}


# ----------------------------------------------------------------------------------------------
# The model: a DiT conditioned through a text encoder and a null condition
# ----------------------------------------------------------------------------------------------
class CaptionedDiT(nn.Module):
    """A ``VideoDiT`` with its null condition and (when it is trained with it) its text encoder.

    ``forward_packed(packed, t, text=..., ...)`` takes cached caption embeddings ``text [B, Lt, D]``
    (+ ``text_mask``) or the captions themselves (a list of str: encoded here, so a trainable
    encoder learns with the DiT), drops captions to the null (caption dropout, training mode only)
    and runs the DiT; what ``packed_flow_loss`` calls (as ``model(packed, t, ...)``).
    ``embed(prompts)`` / ``null_for(n, length)`` are the sampling-time conditions. ``encoder``: any
    ``encode(prompts) -> TextEmbedding``; frozen (its parameters left out of training) unless
    ``train_encoder``.
    """

    def __init__(self, dit, encoder, null: NullCondition, *, train_encoder: bool = False):
        super().__init__()
        self.dit, self.null = dit, null
        self.timestep_range = dit.timestep_range  # the objective reads it to scale t
        if train_encoder:
            self.encoder = encoder
        else:
            encoder.requires_grad_(False)
            self._frozen = (encoder,)  # a tuple: not a submodule, so not trained or saved

    @property
    def text_encoder(self):
        return self.encoder if "encoder" in self._modules else self._frozen[0]

    def embed(self, prompts: list[str]) -> TextEmbedding:
        return self.text_encoder.encode(prompts, allow_empty=True)

    def null_for(self, n: int, length: int) -> TextEmbedding:
        """The unconditional input of guidance: ``n`` nulls of ``length`` tokens."""
        return self.null.null(n, encoder=self.text_encoder, device=self.dit.x_embedder.weight.device).pad_to(length)

    def forward(self, packed, t, **kw):
        """:meth:`forward_packed` (what ``packed_flow_loss`` calls, through ``forward`` for DDP)."""
        return self.forward_packed(packed, t, **kw)

    def forward_packed(self, packed, t, *, text, text_mask=None, **kw):
        emb = self.embed(text) if isinstance(text, list) else TextEmbedding(text, text_mask, masked_mean(text, text_mask))
        emb = self.null(emb, encoder=self.text_encoder)  # caption dropout (training mode only)
        return self.dit.forward_packed(packed, t, text=emb.tokens, text_mask=emb.mask, **kw)


class CaptionBatches(VideoBatches):
    """``VideoBatches`` whose ``text`` is the captions (list of str), for an encoder trained jointly."""

    def _text(self, idx, drop):
        return [self.videos.captions[i] for i in idx], None


# ----------------------------------------------------------------------------------------------
# One arm: train, sample, score
# ----------------------------------------------------------------------------------------------
def image_data(cfg: CaptionStudyConfig, detailed_share: float | None = None) -> VideoDataConfig:
    """The training images (T = 1) of the study."""
    share = cfg.detailed_share if detailed_share is None else detailed_share
    return VideoDataConfig(videos=cfg.videos, sizes=(tuple(cfg.size),), frames=(1,), max_objects=cfg.max_objects,
                           detailed_share=share, holdout=0)


def build_model(cfg: CaptionStudyConfig, autoencoder, encoder, null_kind: str, *, train_encoder=False,
                seed: int = 0) -> CaptionedDiT:
    """A fresh DiT (seeded) conditioned through ``encoder`` with a ``null_kind`` null."""
    from sora_mini.models.configs import VideoDiTConfig
    from sora_mini.models.video_dit import VideoDiT

    torch.manual_seed(seed)
    dit = VideoDiT(VideoDiTConfig(in_channels=autoencoder.latent_channels, patch_size=(1, 2, 2),
                                  hidden_size=cfg.hidden_size, depth=cfg.depth, num_heads=cfg.num_heads,
                                  frame_cond="in_place", text_cond="cross_attn", text_dim=encoder.dim))
    null = NullCondition(null_kind, dim=encoder.dim, caption_dropout=cfg.caption_dropout)
    return CaptionedDiT(dit, encoder, null, train_encoder=train_encoder)


def _to(batch: dict, device) -> dict:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def train_arm(model: CaptionedDiT, videos, cfg: CaptionStudyConfig, seed: int, *, joint=False,
              device="cpu") -> tuple[list[float], float]:
    """AdamW over ``model``'s trainable parameters for ``cfg.steps`` steps -> (losses, seconds)."""
    recipe = VideoRecipe(pack_length=cfg.pack_length, tokens_per_step=cfg.tokens_per_step, caption_dropout=0.0,
                         masks=NO_MASKS, seed=seed)  # dropout is the null condition's (in the model)
    batches = (CaptionBatches if joint else VideoBatches)(videos, recipe, model.dit.patch_size)
    loss_fn = packed_flow_loss(flow_objective(recipe))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    model.to(device).train()
    torch.manual_seed(seed)  # the caption-dropout draws
    losses, t0 = [], time.perf_counter()
    for step in range(cfg.steps):
        loss, _ = loss_fn(model, _to(batches(step), device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses, time.perf_counter() - t0


@torch.no_grad()
def generate(model: CaptionedDiT, autoencoder, prompts: list[str], cfg: CaptionStudyConfig, *,
             guidance_scale: float, seed: int) -> torch.Tensor:
    """One image per prompt -> [B, 3, 1, H, W] in [-1, 1] (Euler, the recipe's shift)."""
    from sora_mini.diffusion import FlowMatching, FlowOptions, sample

    model.eval()
    device = model.dit.x_embedder.weight.device
    shape = autoencoder.latent_shape(1, *cfg.size)  # [C, 1, h, w]
    emb = model.embed(prompts).to(device)
    null = model.null_for(len(prompts), emb.tokens.shape[1])
    length = max(emb.tokens.shape[1], null.tokens.shape[1])
    emb, null = emb.pad_to(length), null.pad_to(length)
    noise = torch.randn((len(prompts), *shape), generator=torch.Generator().manual_seed(seed))
    grid = (shape[1], shape[2] // 2, shape[3] // 2)
    latents = sample(model.dit, FlowMatching(), noise.shape, sampler="euler", steps=cfg.sample_steps,
                     guidance_scale=guidance_scale, cond={"text": emb.tokens, "text_mask": emb.mask},
                     uncond={"text": null.tokens, "text_mask": null.mask}, noise=noise.to(device),
                     options=FlowOptions(shift=time_shift(grid)), progress=False)
    return autoencoder.decode(latents.float()).clamp(-1, 1).cpu()


def adherence(images: torch.Tensor, prompts: list[str]) -> dict:
    """The evaluator on each image [B, 3, 1, H, W] against its prompt -> {"adherence": mean overall,
    "attributes": {name: mean over the images that state it, or None}} (T = 1: no motion attributes)."""
    from sora_mini.evaluate import SCORED, evaluate_video

    scores = [evaluate_video(img, p)["adherence"] for img, p in zip(images, prompts)]
    attrs = {}
    for a in SCORED:
        vals = [s["attributes"][a] for s in scores if s["attributes"].get(a) is not None]
        attrs[a] = float(np.mean(vals)) if vals else None
    return {"adherence": float(np.mean([s["overall"] for s in scores])), "attributes": attrs}


def diversity(images: torch.Tensor) -> float:
    """Mean pairwise pixel distance (mean |a - b| on [0, 1] pixels) of [N, 3, 1, H, W] samples."""
    x = (images.flatten(1) + 1) / 2
    n = len(x)
    if n < 2:
        raise ValueError("diversity needs at least 2 samples")
    d = (x[:, None] - x[None]).abs().mean(-1)  # [N, N]
    return float(d.sum() / (n * (n - 1)))


def held_out_specs(cfg: CaptionStudyConfig) -> list:
    """``cfg.eval_prompts`` scenes the training never saw."""
    from sora_mini.world import sample_spec, spec_seed

    return [sample_spec(spec_seed(HELD_OUT_SEED, k), max_objects=cfg.max_objects) for k in range(cfg.eval_prompts)]


def held_out_prompts(cfg: CaptionStudyConfig) -> list[str]:
    """The detailed captions of :func:`held_out_specs`."""
    from sora_mini.world.captions import detailed_caption

    return [detailed_caption(s) for s in held_out_specs(cfg)]


@torch.no_grad()
def references(cfg: CaptionStudyConfig, autoencoder) -> dict:
    """What a perfect model could score: the held-out scenes rendered (``truth``) and passed through
    the autoencoder (``autoencoder round trip``: the ceiling of any model that generates latents)."""
    from sora_mini.convert import video_to_model
    from sora_mini.world import render

    h, w = cfg.size
    truth = video_to_model(np.stack([render(s, h, w, 1)[0] for s in held_out_specs(cfg)]))  # [B, 3, 1, H, W]
    device = next(autoencoder.parameters()).device
    round_trip = autoencoder.decode(autoencoder.encode(truth.to(device))).clamp(-1, 1).cpu()
    prompts = held_out_prompts(cfg)
    return {"truth": adherence(truth, prompts), "autoencoder round trip": adherence(round_trip, prompts)}


def to_images(images: torch.Tensor) -> list:
    """[B, 3, 1, H, W] in [-1, 1] -> a list of uint8 [H, W, 3] (as nested lists, for JSON)."""
    from sora_mini.convert import model_to_video

    return [model_to_video(img)[0].tolist() for img in images]
