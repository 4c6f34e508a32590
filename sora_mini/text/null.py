"""The null condition of classifier-free guidance, and caption dropout.

Classifier-free guidance (Ho & Salimans 2022) trains one model both with and without its caption:
with probability ``caption_dropout`` a training caption is replaced by a *null* condition, and at
sampling the two predictions are mixed. What stands for "no caption" is a choice:

    "learned"  a learned embedding: ``length`` token vectors and a pooled vector (DiT, Imagen)
    "empty"    the text encoder's own encoding of the empty caption "" (Stable Diffusion)
    "zeros"    zero vectors: one zero token (so cross-attention has a key) and a zero pooled

``NullCondition(NullConditionConfig(kind, dim))`` (or ``NullCondition(kind, dim)``):
``null(batch, length) -> TextEmbedding``; ``replace(emb, drop [B] bool) -> TextEmbedding`` with the
dropped rows swapped for the null; ``forward(emb)`` drops rows at random in training mode only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sora_mini.pretrained import PretrainedMixin
from sora_mini.text.embedding import TextEmbedding

NULL_KINDS = ("learned", "empty", "zeros")


@dataclass(frozen=True)
class NullConditionConfig:
    """Which null, its width ``dim`` (the text encoder's), and the training drop probability."""

    kind: str = "learned"
    dim: int = 64
    length: int = 1  # learned null tokens
    caption_dropout: float = 0.1  # probability that a training caption is replaced by the null

    def __post_init__(self):
        if self.kind not in NULL_KINDS:
            raise ValueError(f"unknown null condition {self.kind!r}; choose one of {', '.join(NULL_KINDS)}")
        if not 0.0 <= self.caption_dropout <= 1.0:
            raise ValueError(f"caption_dropout is a probability in [0, 1], got {self.caption_dropout}")
        if self.length < 1 or self.dim < 1:
            raise ValueError(f"length ({self.length}) and dim ({self.dim}) must be >= 1")


class NullCondition(PretrainedMixin, nn.Module):
    """The "no caption" embedding of one kind (see the module doc)."""

    config_class = NullConditionConfig

    def __init__(self, config: NullConditionConfig | str = NullConditionConfig(), dim: int | None = None,
                 **kw):
        super().__init__()
        if isinstance(config, str):
            config = NullConditionConfig(kind=config, **({"dim": dim} if dim is not None else {}), **kw)
        self.config = config
        if config.kind == "learned":
            self.tokens = nn.Parameter(torch.randn(config.length, config.dim) * 0.02)
            self.pooled = nn.Parameter(torch.zeros(config.dim))

    @property
    def kind(self) -> str:
        return self.config.kind

    def null(self, batch: int, length: int | None = None, *, encoder=None, device=None) -> TextEmbedding:
        """``batch`` copies of the null: ``tokens [batch, L, dim]`` (``L = length`` or the null's own)."""
        cfg = self.config
        if cfg.kind == "empty":
            if encoder is None:
                raise ValueError("the 'empty' null condition is the text encoder's encoding of '': "
                                 "pass encoder=<the text encoder>")
            if encoder.dim != cfg.dim:
                raise ValueError(f"the encoder's width {encoder.dim} differs from the null's dim {cfg.dim}")
            one = self._empty(encoder)
        else:
            n = cfg.length if cfg.kind == "learned" else 1
            device = device or (self.tokens.device if cfg.kind == "learned" else "cpu")
            tokens = self.tokens[None] if cfg.kind == "learned" else torch.zeros(1, n, cfg.dim, device=device)
            pooled = self.pooled[None] if cfg.kind == "learned" else torch.zeros(1, cfg.dim, device=device)
            one = TextEmbedding(tokens, torch.ones(1, n, dtype=torch.bool, device=tokens.device), pooled)
        if length is not None:
            if length < one.tokens.shape[1]:
                raise ValueError(f"the null condition has {one.tokens.shape[1]} tokens; it does not fit "
                                 f"in {length}")
            one = one.pad_to(length)
        if device is not None:
            one = one.to(device)
        return TextEmbedding(one.tokens.expand(batch, -1, -1), one.mask.expand(batch, -1),
                             one.pooled.expand(batch, -1))

    def _empty(self, encoder) -> TextEmbedding:
        """``encoder``'s encoding of "", computed once while the encoder is frozen (no parameter
        that trains, eval mode: caption dropout asks for it every training step, and a frozen
        MiniLM's pass cost more than the rest of a small model's step); every call otherwise."""
        params = list(encoder.parameters()) if isinstance(encoder, nn.Module) else []
        frozen = isinstance(encoder, nn.Module) and not encoder.training and not any(p.requires_grad for p in params)
        if not frozen:
            return encoder.encode([""], allow_empty=True)
        key = (id(encoder), tuple(p._version for p in params))
        cached = getattr(self, "_empty_cache", None)
        if cached is None or cached[0] != key:
            with torch.no_grad():
                self._empty_cache = (key, encoder.encode([""], allow_empty=True))
        return self._empty_cache[1]

    def replace(self, emb: TextEmbedding, drop: torch.Tensor, *, encoder=None) -> TextEmbedding:
        """``emb`` with the rows where ``drop [B]`` is True replaced by the null (padded to fit)."""
        if emb.dim != self.config.dim:
            raise ValueError(f"caption embeddings are {emb.dim} wide but the null is {self.config.dim}; "
                             "build NullCondition with dim = the text encoder's dim")
        drop = drop.to(device=emb.tokens.device, dtype=torch.bool)
        if drop.shape != (len(emb),):
            raise ValueError(f"drop must be a bool tensor [B] = [{len(emb)}], got {tuple(drop.shape)}")
        null = self.null(len(emb), encoder=encoder, device=emb.tokens.device)
        length = max(emb.tokens.shape[1], null.tokens.shape[1])
        emb, null = emb.pad_to(length), null.pad_to(length)
        d3, d2 = drop[:, None, None], drop[:, None]
        return TextEmbedding(torch.where(d3, null.tokens.to(emb.tokens.dtype), emb.tokens),
                             torch.where(d2, null.mask, emb.mask),
                             torch.where(d2, null.pooled.to(emb.pooled.dtype), emb.pooled))

    def drop_mask(self, batch: int, *, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """``[batch]`` bool, each True with probability ``caption_dropout``."""
        return torch.rand(batch, generator=generator).to(device or "cpu") < self.config.caption_dropout

    def forward(self, emb: TextEmbedding, *, encoder=None, generator=None) -> TextEmbedding:
        """Caption dropout: in training mode drop rows with probability ``caption_dropout``; in
        eval mode return ``emb`` unchanged."""
        if not self.training or self.config.caption_dropout == 0:
            return emb
        return self.replace(emb, self.drop_mask(len(emb), generator=generator), encoder=encoder)
