"""The video autoencoder: encoder -> bottleneck (KL | VQ | FSQ) -> decoder, 2D per frame or 3D causal.

Shapes: video ``[B, 3, T, H, W]`` in [-1, 1] (an image is ``T = 1``; ``[B, 3, H, W]`` is taken as
one) <-> latent ``[B, C, t, H/s, W/s]`` with ``t = T`` (2D) or ``t = 1 + (T-1)/k`` (3D causal).
Sora's report (2024) names both ways to compress video: spatial patches from an image encoder
applied per frame, and spatio-temporal compression (MAGVIT-v2, arXiv 2310.05737; CogVideoX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from sora_mini.patches.patchify import frames_fit, latent_frames, nearest_frame_counts
from sora_mini.pretrained import PretrainedMixin

from .bottleneck import BottleneckOutput
from .fsq import FSQ
from .kl import KLBottleneck
from .layers import TEMPORAL_UPSAMPLES
from .networks import Decoder, Encoder
from .vq import VectorQuantizer

ARCHS = ("2d", "3d")
BOTTLENECKS = ("kl", "vq", "fsq")


@dataclass(frozen=True)
class AutoencoderConfig:
    """Everything that defines an autoencoder's weights; its ``config.json`` (see ``sora_mini.pretrained``)."""

    arch: str = "3d"  # "2d": per-frame image autoencoder; "3d": causal spatio-temporal
    bottleneck: str = "kl"  # "kl" | "vq" | "fsq"
    spatial_factor: int = 4
    temporal_factor: int = 4  # 1 for "2d"
    latent_channels: int = 4
    base_channels: int = 16
    num_blocks: int = 1
    patch: int = 2  # pixel-unshuffle before the first convolution (part of the spatial factor)
    mid_blocks: int = 1  # residual blocks at the latent resolution (cheap depth)
    deep_mult: int = 2  # width below the patch grid = base_channels * deep_mult
    frame_levels: int = 0  # 3D only: the finest levels' blocks see one frame at a time
    time_patch: int = 1  # 3D only: groups of frames reshaped into channels (part of temporal_factor)
    temporal_upsample: str = "repeat"  # 3D decoder: "repeat" | "depth_to_time" (see layers.Upsample3d)
    kl_weight: float = 1e-6
    codebook_size: int = 512
    vq_decay: float = 0.99
    commitment: float = 0.25
    dead_threshold: float = 1.0
    fsq_levels: tuple[int, ...] = (8, 5, 5, 5)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {ARCHS}")
        if self.bottleneck not in BOTTLENECKS:
            raise ValueError(f"unknown bottleneck {self.bottleneck!r}; choose one of {BOTTLENECKS}")
        if self.arch == "2d" and self.temporal_factor != 1:
            raise ValueError("a 2D per-frame autoencoder has temporal_factor 1 "
                             f"(got {self.temporal_factor}); use arch='3d' to compress time")
        if self.temporal_upsample not in TEMPORAL_UPSAMPLES:
            raise ValueError(f"unknown temporal_upsample {self.temporal_upsample!r}; "
                             f"choose one of {TEMPORAL_UPSAMPLES}")
        if self.arch == "2d" and self.time_patch != 1:
            raise ValueError(f"a 2D per-frame autoencoder has time_patch 1 (got {self.time_patch})")
        if self.bottleneck == "fsq" and len(self.fsq_levels) != self.latent_channels:
            raise ValueError(f"FSQ needs one level per latent channel: {len(self.fsq_levels)} "
                             f"levels {tuple(self.fsq_levels)} for {self.latent_channels} channels")

    @property
    def kind(self) -> str:
        return f"{self.arch}_{self.bottleneck}"


def make_bottleneck(cfg: AutoencoderConfig) -> nn.Module:
    """The bottleneck module named by ``cfg.bottleneck``."""
    if cfg.bottleneck == "kl":
        return KLBottleneck(cfg.latent_channels, cfg.kl_weight)
    if cfg.bottleneck == "vq":
        return VectorQuantizer(cfg.latent_channels, cfg.codebook_size, cfg.vq_decay,
                               cfg.commitment, cfg.dead_threshold)
    return FSQ(cfg.fsq_levels)


def _nearest_multiples(n: int, m: int) -> str:
    lo, hi = (n // m) * m, (n // m + 1) * m
    return f"{hi}" if lo == 0 else f"{lo} or {hi}"


@dataclass
class AutoencoderOutput:
    recon: torch.Tensor  # [B, 3, T, H, W]
    z: torch.Tensor  # [B, C, t, h, w], unscaled (what the decoder saw)
    bottleneck: BottleneckOutput


class VideoAutoencoder(PretrainedMixin, nn.Module):
    """Encoder, bottleneck and decoder with a data-derived latent ``scale_factor``.

    ``encode`` returns ``scale_factor * latent`` (unit variance, ready for diffusion) and
    ``decode`` divides it back out; ``forward`` is the training path (sampled / quantized latent,
    bottleneck loss). Fully convolutional: any ``H, W`` that are multiples of ``spatial_factor``
    and, for the 3D model, any ``T = 1 + n * temporal_factor``. The scale factor is a buffer (part
    of the weights, saved with them); set it with :meth:`set_scale_factor`. Saved and loaded with
    ``save_pretrained(folder)`` / ``VideoAutoencoder.from_pretrained(folder, device=...)``.
    """

    config_class = AutoencoderConfig

    def __init__(self, config: AutoencoderConfig):
        super().__init__()
        self.config = config
        dims = 3 if config.arch == "3d" else 2
        self.bottleneck = make_bottleneck(config)
        kw = {"base_channels": config.base_channels, "spatial_factor": config.spatial_factor,
              "temporal_factor": config.temporal_factor, "num_blocks": config.num_blocks,
              "patch": config.patch, "mid_blocks": config.mid_blocks, "deep_mult": config.deep_mult,
              "frame_levels": config.frame_levels, "time_patch": config.time_patch}
        self.encoder = Encoder(dims, self.bottleneck.in_channels, **kw)
        self.decoder = Decoder(dims, config.latent_channels, temporal_upsample=config.temporal_upsample, **kw)
        if config.bottleneck == "kl":
            self.bottleneck.init_logvar(self.encoder.conv_out)
        self.register_buffer("scale_factor", torch.tensor(1.0))

    # ------------------------------------------------------------------------------------------
    @property
    def spatial_factor(self) -> int:
        return self.config.spatial_factor

    @property
    def temporal_factor(self) -> int:
        return self.config.temporal_factor

    @property
    def latent_channels(self) -> int:
        return self.config.latent_channels

    def check_size(self, frames: int, height: int, width: int) -> None:
        """Raise a ``ValueError`` naming the nearest valid sizes if the video cannot be encoded."""
        s, k = self.spatial_factor, self.temporal_factor
        for name, n in (("height", height), ("width", width)):
            if n < s or n % s:
                raise ValueError(f"{name} {n} is not a multiple of {s} (the spatial compression "
                                 f"of this {self.config.kind} autoencoder); try {_nearest_multiples(n, s)}")
        if not frames_fit(frames, k):
            near = " or ".join(str(n) for n in nearest_frame_counts(frames, k))
            raise ValueError(f"{frames} frames cannot be split as 1 + n x {k} (the first frame is "
                             f"encoded alone, then groups of {k}); try {near} frames")

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """``(C, t, h, w)`` of the latent of a ``frames x height x width`` video."""
        self.check_size(frames, height, width)
        s = self.spatial_factor
        return (self.latent_channels, latent_frames(frames, self.temporal_factor), height // s, width // s)

    def set_scale_factor(self, value: float) -> None:
        """Set the latent scale factor (``encode`` multiplies by it, ``decode`` divides by it);
        ``sora_mini.train.latent_scale_factor`` measures the one that gives unit-variance latents."""
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"the scale factor must be a finite positive number, got {value}; it is "
                             "1 / std(latent) over training videos (train.latent_scale_factor)")
        self.scale_factor.fill_(value)

    def _as_video(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 4:  # one image per batch item: [B, 3, H, W] -> [B, 3, 1, H, W]
            x = x.unsqueeze(2)
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"expected a video [B, 3, T, H, W] (or images [B, 3, H, W]), got "
                             f"shape {tuple(x.shape)}; use compression.data.video_to_model on uint8 video")
        self.check_size(*x.shape[2:])
        return x

    # ------------------------------------------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output before the bottleneck: ``[B, 3, T, H, W] -> [B, C_in, t, h, w]``."""
        x = self._as_video(x)
        if self.config.arch == "3d":
            return self.encoder(x)
        b = x.shape[0]
        frames = rearrange(x, "b c t h w -> (b t) c h w")  # every frame is its own image
        return rearrange(self.encoder(frames), "(b t) c h w -> b c t h w", b=b)

    def decode_unscaled(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder only: ``[B, C, t, h, w] -> [B, 3, T, H, W]`` (no scale factor)."""
        if self.config.arch == "3d":
            return self.decoder(z)
        b = z.shape[0]
        frames = self.decoder(rearrange(z, "b c t h w -> (b t) c h w"))
        return rearrange(frames, "(b t) c h w -> b c t h w", b=b)

    def forward(self, x: torch.Tensor) -> AutoencoderOutput:
        """Training path: ``[B, 3, T, H, W] -> recon [B, 3, T, H, W]``, latent and bottleneck loss."""
        out = self.bottleneck(self.features(x))
        return AutoencoderOutput(recon=self.decode_unscaled(out.z), z=out.z, bottleneck=out)

    def encode_unscaled(self, x: torch.Tensor) -> torch.Tensor:
        """Video -> deterministic latent ``[B, C, t, h, w]`` (posterior mean or code vectors), no scale."""
        return self.bottleneck.latent(self.features(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Video -> scaled deterministic latent ``[B, C, t, h, w]`` (posterior mean or code vectors)."""
        return self.encode_unscaled(x) * self.scale_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Scaled latent ``[B, C, t, h, w]`` -> video ``[B, 3, T, H, W]`` in about [-1, 1]."""
        if z.ndim != 5 or z.shape[1] != self.latent_channels:
            raise ValueError(f"expected a latent [B, {self.latent_channels}, t, h, w], "
                             f"got shape {tuple(z.shape)}")
        return self.decode_unscaled(z / self.scale_factor)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``decode(encode(x))`` clamped to [-1, 1], without gradients."""
        return self.decode(self.encode(x)).clamp(-1, 1)

    def indices(self, x: torch.Tensor) -> torch.Tensor | None:
        """Code indices ``[B, t, h, w]`` of a quantized autoencoder (``None`` for KL)."""
        if self.config.bottleneck == "kl":
            return None
        was = self.training
        self.eval()
        try:
            return self.bottleneck(self.features(x)).indices
        finally:
            self.train(was)

    # ------------------------------------------------------------------------------------------
    def bits_per_pixel(self, frames: int, height: int, width: int) -> float | None:
        """Rate of a quantized latent: ``log2(codes) x positions / pixels`` (None for KL)."""
        bits = self.bottleneck.bits_per_position
        if bits is None:
            return None
        _, t, h, w = self.latent_shape(frames, height, width)
        return bits * t * h * w / (frames * height * width)

    def compression_ratio(self, frames: int, height: int, width: int) -> float:
        """Numbers in the video over numbers in the latent: ``3 T H W / (C t h w)``."""
        c, t, h, w = self.latent_shape(frames, height, width)
        return 3 * frames * height * width / (c * t * h * w)
