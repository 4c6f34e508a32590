"""Video compression: 2D per-frame and 3D causal convolutional autoencoders with a KL (VAE),
VQ (EMA codebook) or FSQ bottleneck, their training, metrics and latent scaling.

``VideoAutoencoder(AutoencoderConfig(arch="3d", bottleneck="kl"))``: video ``[B, 3, T, H, W]`` in
[-1, 1] <-> latent ``[B, C, 1 + (T-1)/k, H/s, W/s]`` (``patches.patchify.latent_frames``).
``encode`` / ``decode`` apply the latent ``scale_factor`` (a buffer, saved with the weights; measure
it with ``sora_mini.train.latent_scale_factor(model, videos)`` and set it with
``model.set_scale_factor(s)``); ``encode_unscaled`` / ``decode_unscaled`` do not.
``model.save_pretrained(folder)`` / ``VideoAutoencoder.from_pretrained(folder, device=...)`` save and
load one (strictly: ``sora_mini.pretrained``). Trained models per scale come from
``sora_mini.artifacts.get_autoencoder(scale, kind=...)``.
"""

from sora_mini.compression.autoencoder import (
    ARCHS,
    BOTTLENECKS,
    AutoencoderConfig,
    AutoencoderOutput,
    VideoAutoencoder,
    make_bottleneck,
)
from sora_mini.compression.bottleneck import BottleneckOutput, code_statistics
from sora_mini.compression.fsq import FSQ
from sora_mini.compression.kl import DiagonalGaussian, KLBottleneck
from sora_mini.compression.vq import VectorQuantizer

__all__ = [
    "ARCHS", "BOTTLENECKS", "FSQ", "AutoencoderConfig", "AutoencoderOutput", "BottleneckOutput",
    "DiagonalGaussian", "KLBottleneck", "VectorQuantizer", "VideoAutoencoder", "code_statistics",
    "make_bottleneck",
]
