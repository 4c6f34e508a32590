"""A CLIP-like pair for the world: the transformer text encoder + a small video encoder, trained
contrastively on world videos and their captions.

    captions -> TransformerTextEncoder -> pooled [B, Dt] -> Linear -> L2 -> t [B, E]
    videos   -> VideoEncoder           -> pooled [B, Cv] -> MLP    -> L2 -> v [B, E]
    logits = exp(s) * t @ v^T,   loss = (CE(logits, diag) + CE(logits^T, diag)) / 2

(CLIP, Radford et al. 2021: symmetric InfoNCE; the learned log-temperature ``s`` starts at
log(1 / 0.07) and is clamped to at most log(100).) ``retrieval_recall`` measures text-to-video
and video-to-text recall@k on held-out videos. ``encode(prompts)`` is the text tower's
``TextEmbedding``, so a trained CLIP text encoder conditions the diffusion model like any other.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sora_mini.pretrained import PretrainedMixin
from sora_mini.text.embedding import TextEmbedding
from sora_mini.text.encoders import (
    CAPTION_VOCAB_SIZE,
    TextEncoderConfig,
    TransformerTextEncoder,
    tokenizer_of,
)
from sora_mini.text.video_encoder import VideoEncoder


@dataclass(frozen=True)
class CLIPConfig:
    """Both towers and the shared embedding."""

    vocab_size: int = CAPTION_VOCAB_SIZE
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_length: int = 96
    video_channels: tuple[int, ...] = (16, 32, 64)
    embed_dim: int = 64
    init_temperature: float = 0.07  # CLIP's initial temperature (logit scale 1 / 0.07)
    max_logit_scale: float = 100.0  # the clamp of exp(s)

    def text_config(self) -> TextEncoderConfig:
        return TextEncoderConfig(vocab_size=self.vocab_size, hidden_size=self.text_hidden,
                                 layers=self.text_layers, heads=self.text_heads, max_length=self.max_length)


class VideoTextCLIP(PretrainedMixin, nn.Module):
    """``embed_text(prompts) -> [B, E]``, ``embed_video(videos [B, 3, T, H, W]) -> [B, E]`` (unit
    norm); ``loss(videos, prompts) -> (loss, metrics)``; ``encode(prompts) -> TextEmbedding``."""

    config_class = CLIPConfig

    def __init__(self, config: CLIPConfig = CLIPConfig(), tokenizer=None):
        super().__init__()
        self.config = config
        self.text = TransformerTextEncoder(config.text_config(), tokenizer=tokenizer)
        self.video = VideoEncoder(config.video_channels)
        self.text_proj = nn.Linear(config.text_hidden, config.embed_dim, bias=False)
        self.video_proj = nn.Sequential(nn.Linear(self.video.dim, self.video.dim), nn.SiLU(),
                                        nn.Linear(self.video.dim, config.embed_dim, bias=False))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.init_temperature)))

    @property
    def tokenizer(self):
        return self.text.tokenizer

    def encode(self, prompts, *, allow_empty: bool = False) -> TextEmbedding:
        return self.text.encode(prompts, allow_empty=allow_empty)

    def scale(self) -> torch.Tensor:
        """``exp(s)`` clamped to ``[1, max_logit_scale]``."""
        return self.logit_scale.clamp(0.0, math.log(self.config.max_logit_scale)).exp()

    def embed_text(self, prompts) -> torch.Tensor:
        return F.normalize(self.text_proj(self.text.encode(prompts).pooled).float(), dim=-1)

    def embed_video(self, videos: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video_proj(self.video(videos)[1]).float(), dim=-1)

    def forward(self, videos: torch.Tensor, prompts) -> torch.Tensor:
        """``logits [B_text, B_video] = exp(s) * t @ v^T``."""
        return self.scale() * self.embed_text(prompts) @ self.embed_video(videos).T

    def loss(self, videos: torch.Tensor, prompts) -> tuple[torch.Tensor, dict]:
        """Symmetric InfoNCE over the batch (caption ``i`` belongs to video ``i``)."""
        logits = self(videos, prompts)
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        acc = (logits.argmax(1) == target).float().mean()
        return loss, {"batch_t2v_acc": acc.item(), "logit_scale": self.scale().item()}

    def save_pretrained(self, directory: str | os.PathLike):
        self.text.tokenizer.save_pretrained(str(os.path.join(directory, "tokenizer")))
        return super().save_pretrained(directory)

    @classmethod
    def build_from_pretrained(cls, config, directory: Path):
        return cls(config, tokenizer=tokenizer_of(directory))


@torch.no_grad()
def embed_all(model: VideoTextCLIP, videos: list[torch.Tensor], captions: list[str],
              batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit embeddings of ``captions`` and ``videos`` (each ``[3, T, H, W]``; equal sizes are
    batched together) -> ``(text [N, E], video [N, E])`` in the given order."""
    if len(videos) != len(captions):
        raise ValueError(f"{len(videos)} videos but {len(captions)} captions; give one caption per video")
    model.eval()
    device = next(model.parameters()).device
    text = torch.cat([model.embed_text(captions[i:i + batch_size])
                      for i in range(0, len(captions), batch_size)])
    video = torch.empty(len(videos), text.shape[1])
    by_size: dict[tuple, list[int]] = {}
    for i, v in enumerate(videos):
        by_size.setdefault(tuple(v.shape), []).append(i)
    for idx in by_size.values():
        for j in range(0, len(idx), batch_size):
            part = idx[j:j + batch_size]
            video[part] = model.embed_video(torch.stack([videos[i] for i in part]).to(device)).cpu()
    return text.cpu(), video


def recall_at_k(similarity: torch.Tensor, ks=(1, 5)) -> dict[str, float]:
    """Recall@k of a square ``similarity [N_query, N_item]`` whose right item is on the diagonal."""
    n = similarity.shape[0]
    correct = similarity[torch.arange(n), torch.arange(n)].unsqueeze(1)
    rank = (similarity > correct).sum(1)  # how many items beat the right one (ties count for it)
    return {f"@{k}": float((rank < k).float().mean()) for k in ks}


def retrieval_recall(model: VideoTextCLIP, videos: list[torch.Tensor], captions: list[str],
                     ks=(1, 5)) -> dict[str, float]:
    """Text-to-video and video-to-text recall@k on (held-out) pairs ``videos[i] <-> captions[i]``.

    -> ``{"t2v@1", "t2v@5", "v2t@1", "v2t@5", "n", "chance@1"}``; chance@1 is ``1 / n``.
    """
    text, video = embed_all(model, videos, captions)
    sim = text @ video.T
    out = {f"t2v{k}": v for k, v in recall_at_k(sim, ks).items()}
    out.update({f"v2t{k}": v for k, v in recall_at_k(sim.T, ks).items()})
    return {**out, "n": len(captions), "chance@1": 1.0 / len(captions)}
