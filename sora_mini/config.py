"""Scale presets: ``tiny`` (CI, minutes on 2 CPU cores), ``small`` (about an hour on a laptop CPU),
``base`` (one GPU, hours). One dataclass per stage of the data flow; a ``ScaleConfig`` bundles them.

Each section is owned by the subpackage of the same name; add a field there when a stage needs
a new knob, and give it a value in every preset. A study (``sora_mini.studies``) owns its own
settings and presets; they do not live here. Nothing here runs at import.
"""

from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field

SCALES = ("tiny", "small", "base")


# ----------------------------------------------------------------------------------------------
# Sections, one per stage
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldConfig:
    """The training mix of the procedural video world (see ``sora_mini.world``)."""

    sizes: tuple[tuple[int, int], ...] = ((32, 32), (32, 48), (48, 32), (32, 64))  # (H, W)
    frames: tuple[int, ...] = (1, 5, 9)  # durations T; 1 + 4n so a 4x causal VAE keeps them all
    max_objects: int = 3
    train_videos: int = 256
    eval_videos: int = 64


@dataclass(frozen=True)
class CompressionConfig:
    """Video autoencoder (see ``sora_mini.compression``)."""

    spatial_factor: int = 4  # H/s, W/s (the first 2x2 of it a pixel-unshuffle, see ``patch``)
    temporal_factor: int = 4  # causal: 1 + (T-1)/k latent frames (the 2D model keeps every frame)
    latent_channels: int = 4  # of the 3D model; the 2D one gets latent_channels / temporal_factor
    base_channels: int = 16
    num_blocks: int = 1  # residual blocks per resolution level
    mid_blocks: int = 1  # residual blocks at the latent resolution
    deep_mult: int = 2  # width below the patch grid = base_channels * deep_mult
    frame_levels: int = 1  # 3D: the finest level's blocks are per frame (faster; learns like 2D)
    patch: int = 2  # pixel-unshuffle before the first convolution
    time_patch: int = 1  # 3D: frames per group reshaped into channels first (part of temporal_factor)
    temporal_upsample: str = "repeat"  # 3D decoder: "repeat" or "depth_to_time" (compression.layers)
    kl_weight: float = 1e-6  # KL per latent element vs. pixel MSE (LDM's "small KL weight")
    codebook_size: int = 256  # VQ codes
    fsq_level: int = 5  # FSQ levels per latent channel (codebook = fsq_level ** channels)
    train_crop: tuple[int, int, int] = (9, 32, 32)  # (T, H, W) random training windows
    temporal_weight: float = 0.0  # weight of the frame-difference (flicker) loss term
    train_steps: int = 60
    batch_size: int = 4
    lr: float = 2e-3


@dataclass(frozen=True)
class PatchConfig:
    """Spacetime patches and packing (see ``sora_mini.patches``)."""

    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw) over the latent
    pack_length: int = 256  # tokens per packed sequence
    # "sincos" (absolute 3D sin-cos, the default: one token spacing at every size), "sincos_scaled"
    # (positions rescaled to a reference grid, for sizes beyond training) or "rope" (3D rotary)
    position_embedding: str = "sincos"
    max_drop_rate: float = 0.0  # token dropping: per-example rate uniform in [0, max]; 0 keeps all


@dataclass(frozen=True)
class DiffusionConfig:
    """Noise schedules, objectives and samplers (see ``sora_mini.diffusion``)."""

    num_train_timesteps: int = 1000
    sample_steps: int = 10


@dataclass(frozen=True)
class ModelConfig:
    """Backbone size (see ``sora_mini.models``)."""

    hidden_size: int = 64
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    attention: str = "full"  # "full" space-time or "factorized" (spatial / temporal blocks, Latte)
    frame_cond: str = "in_place"  # how clean frames enter (see sora_mini.models.conditioning)
    text_cond: str = "cross_attn"  # "cross_attn" (+ pooled caption in adaLN) or "joint" (MMDiT)
    text_dim: int = 384  # width of the caption embeddings (all-MiniLM-L6-v2: 384)


@dataclass(frozen=True)
class FinetuneConfig:
    """Stage 2 of the text-to-video recipe (Open-Sora's multi-stage training): the stage-1 model
    trained on longer clips only, from its EMA weights, with a new warmup and cosine decay."""

    steps: int = 20
    lr: float = 5e-4
    warmup_steps: int = 5
    videos: int = 128  # world clips of the stage, rendered and encoded once (same scenes' seed)
    frames: tuple[int, ...] = (9,)  # durations of the stage (the longest of the mix: motion)
    mask_scale: float = 0.7  # the stage-1 frame-mask ratios times this (more text-only clips)
    # whiten the frozen caption embeddings at the stage's start, the function kept (TextConditioner.
    # set_whitening): in MiniLM "left" and "right" are 0.7 of a token spread apart, "red" and "blue" 1.9
    whiten_text: bool = True
    # the frozen text encoder of the stage: "minilm-compass" reads "moves right" as "moves east"
    # (sora_mini.text.frozen.compass_directions): the grammar says "left" / "right" for regions and
    # directions, so "starts at the left and moves right" and "starts at the right and moves left"
    # hold the same words, and the stage-1 model drew their mean
    text_encoder: str = "minilm-compass"
    # the stage's scenes (None: as stage 1's): at most this many objects, drawn from these motions
    # (sora_mini.world.MOTIONS), e.g. max_objects=1, motions=("move",) for a stage of straight movers
    max_objects: int | None = None
    motions: tuple[str, ...] | None = None
    # a caption transformer trained with the model from the stage's start, its tokens read after
    # MiniLM's (sora_mini.text.joint). Measured at small (2000 steps): it did not learn to tell those
    # two captions apart (velocity gap 0.013, "red" / "blue" 0.46), so it is off
    joint_text: bool = False


@dataclass(frozen=True)
class TrainConfig:
    """The shared training loop (see ``sora_mini.train``)."""

    steps: int = 50
    batch_size: int = 8
    lr: float = 1e-3
    bf16: bool = True  # bf16 autocast: about 2.5x faster than fp32 for transformers on this CPU
    log_every: int = 10
    # the text-to-video model (sora_mini.train.video): its training set and recipe
    videos: int = 256  # training clips, rendered and encoded once
    tokens_per_step: int = 1024  # real latent tokens per optimiser step (Patch n' Pack rows)
    warmup_steps: int = 5
    ema_decay: float | None = 0.99  # EMA of the weights (with warmup), sampled from
    caption_dropout: float = 0.1  # captions replaced by the empty caption, for guidance
    ckpt_every: int = 0  # also checkpoint every n steps (0: at the end only)
    # the frozen text encoder of stage 1 (sora_mini.text.frozen.FROZEN_ENCODERS): "minilm", or
    # "minilm-compass" (horizontal direction words read as compass words, see FinetuneConfig).
    # Measured at small in a 60-minute recipe (compass in both stages, 1500 + 1200 steps): all three
    # 0.05 on held-out prompts against 0.30 for the shipped 3000 + 2000 steps (compass in stage 2 only)
    text_encoder: str = "minilm"
    # the text-to-video model's later stages: stage 2, or a tuple (stages 2, 3, ...), each from the
    # EMA weights of the stage before (None: one stage); finetune_stages() gives the tuple
    finetune: FinetuneConfig | tuple[FinetuneConfig, ...] | None = None

    def finetune_stages(self) -> tuple[FinetuneConfig, ...]:
        """The stages after the first, in order (empty for a one-stage recipe)."""
        if self.finetune is None:
            return ()
        return (self.finetune,) if isinstance(self.finetune, FinetuneConfig) else tuple(self.finetune)


@dataclass(frozen=True)
class ScaleConfig:
    name: str
    description: str
    expected_time: str  # the whole notebook sequence, measured
    world: WorldConfig = field(default_factory=WorldConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)
    patches: PatchConfig = field(default_factory=PatchConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------
PRESETS: dict[str, ScaleConfig] = {
    "tiny": ScaleConfig(
        name="tiny",
        description="every code path runs in minutes on 2 CPU cores; numbers are not meaningful",
        expected_time="minutes on 2 CPU cores",
        compression=CompressionConfig(base_channels=8, codebook_size=64, train_steps=40, batch_size=2),
        train=TrainConfig(finetune=FinetuneConfig()),
    ),
    "small": ScaleConfig(
        name="small",
        description="real results on a laptop CPU: prompts followed, claims reproduced",
        expected_time="about an hour on 2 CPU cores",
        world=WorldConfig(
            sizes=((32, 32), (32, 56), (56, 32), (32, 64), (48, 48)),
            frames=(1, 9, 17),
            train_videos=4096,
            eval_videos=256,
        ),
        # measured: 8000 steps = 578 s (3D KL) / 400 s (2D KL) on one thread each, two at once on a
        # 2-core CPU; held-out PSNR 35.3 / 37.3 dB, flicker 1.70 / 1.30 (notebook 01 lists the rest)
        compression=CompressionConfig(temporal_factor=2, latent_channels=8, base_channels=32,
                                      codebook_size=256, train_steps=8000, batch_size=4, lr=1e-3,
                                      temporal_weight=1.0),
        patches=PatchConfig(pack_length=512),
        diffusion=DiffusionConfig(sample_steps=50),
        # the text-to-video model: width 256, depth 6, 4 heads (9.3M parameters), measured 1.1 s a
        # step of 4096 tokens (about 28 clips) on 2 cores in bf16; the same size reached 0.98 on
        # colour, shape and direction of a one-object probe in 35 min (issue 12), so 3000 steps
        # (55 min) at AdamW 5e-4, warmup 200, EMA 0.999 with warmup, on 20,000 clips
        model=ModelConfig(hidden_size=256, depth=6, num_heads=4),
        # stage 2: the stage-1 model after 3000 steps had learned colour (0.92) and count but hardly
        # motion (0.20 on held-out prompts, direction 0.02): its output moved 0.013 between "moves
        # right" and "moves left" and 0.39 between "red" and "blue" (the MiniLM tokens are close), and a
        # third of its clips are images; it continues on 17-frame clips only, fewer of them masked,
        # with the caption tokens whitened and the captions read with compass words ("moves east":
        # the grammar's "left"/"right" name regions and directions; measured direction 0.03 -> 0.13)
        train=TrainConfig(steps=3000, batch_size=16, lr=5e-4, log_every=25, videos=20000, tokens_per_step=4096,
                          warmup_steps=200, ema_decay=0.999, ckpt_every=250,
                          finetune=(FinetuneConfig(steps=2000, lr=3e-4, warmup_steps=100, videos=8000,
                                                   frames=(17,), mask_scale=0.7),
                                    # stage 3: after stage 2 the model still had no usable direction
                                    # signal ("moves <dir> slowly", 8 directions x 3 seeds: direction
                                    # 0.12, motion 0.00). Two of the world's eight motions have a
                                    # direction; here every clip is one object moving straight (bouncing):
                                    # a probe of it (cosine over 3000 steps), 1000 steps: 0.72 slow and quick
                                    FinetuneConfig(steps=2000, lr=3e-4, warmup_steps=100, videos=8000,
                                                   frames=(17,), mask_scale=0.7, whiten_text=False,
                                                   max_objects=1, motions=("move",)),
                                    # stage 4: stage 2's clips again at a third of its learning rate,
                                    # for the other motions and the two- and three-object scenes
                                    FinetuneConfig(steps=1000, lr=1e-4, warmup_steps=50, videos=8000,
                                                   frames=(17,), mask_scale=0.7, whiten_text=False))),
    ),
    "base": ScaleConfig(
        name="base",
        description="one GPU: better samples, larger sizes",
        expected_time="hours on one GPU",
        world=WorldConfig(
            sizes=((64, 64), (64, 112), (112, 64), (64, 128)),
            frames=(1, 17, 33),
            train_videos=65536,
            eval_videos=1024,
        ),
        compression=CompressionConfig(temporal_factor=4, latent_channels=16, base_channels=64,
                                      codebook_size=1024, train_crop=(17, 64, 64), train_steps=20000,
                                      batch_size=16, lr=5e-4),
        patches=PatchConfig(pack_length=2048),
        diffusion=DiffusionConfig(sample_steps=50),
        model=ModelConfig(hidden_size=384, depth=12, num_heads=6),
        train=TrainConfig(steps=50000, batch_size=32, lr=1e-4, log_every=100, videos=65536, tokens_per_step=32768,
                          warmup_steps=1000, ema_decay=0.9999, ckpt_every=1000),
    ),
}


def get_config(scale: str | ScaleConfig = "tiny") -> ScaleConfig:
    """The preset for ``scale``; a clear error for an unknown name."""
    if isinstance(scale, ScaleConfig):
        return scale
    return scale_preset(PRESETS, scale)


def scale_preset(presets: dict, scale, **overrides):
    """``presets[scale]`` (a scale name, or anything with a ``.name`` such as a ``ScaleConfig``)
    with field ``overrides``: the one lookup of every per-scale preset table (stages, studies, text)."""
    name = getattr(scale, "name", scale)
    if name not in presets:
        raise ValueError(f"unknown scale {name!r}; choose one of {', '.join(presets)}")
    return dataclasses.replace(presets[name], **overrides) if overrides else presets[name]


def resolve_device(device: str = "auto"):
    """``"auto"`` picks CUDA, then Apple MPS, then the CPU; anything else is passed to torch."""
    import torch

    if device != "auto":
        try:
            return torch.device(device)
        except RuntimeError as e:
            raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from e
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def step_seed(seed: int, step: int) -> int:
    """The seed of step ``step`` of a run seeded ``seed``: ``seed * 1_000_003 + step``.

    Data functions ``data(step)`` draw each batch from ``torch.Generator().manual_seed(step_seed(...))``,
    so a batch depends on the run's seed and the step only (a resumed run sees the same batches);
    1_000_003 is a prime larger than any step count, so two seeds never share a batch seed.
    """
    return seed * 1_000_003 + step


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every device) for a reproducible run."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
