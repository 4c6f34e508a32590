"""Frozen MiniLM tokens joined by the tokens of a small caption transformer trained with the
diffusion model: ``JointTextEncoder``.

Why: all-MiniLM-L6-v2 was trained to tell sentences apart by topic, and puts words a video caption
must tell apart close together ("left" and "right" 0.7 of a typical token spread apart, "red" and
"blue" 1.9). A text-to-video model conditioned on it alone learned colour and hardly any direction
(the velocity it predicts moved 0.013 between "moves right" and "moves left", 0.39 between "red"
and "blue"). A transformer over the caption vocabulary's words, trained by the diffusion loss,
learns what the denoiser needs from the words; the frozen tokens keep what was learned from them.

    prompts --MiniLM (frozen)---------------------------> tokens [B, Lm, 384]  \\
    prompts --caption words--> BERT (2 layers, trained) --Linear--> [B, Lw, 384] -- joined --> [B, Lm + Lw, 384]

The DiT reads the joined sequence by cross-attention (its masks keep the two paddings out) and
pools it; nothing in the DiT changes. The trained part saves as a part of its own
(``config.json``, ``model.safetensors``, ``tokenizer/``); the frozen one is the package's, never
copied (a copy of the encoder, as the EMA's, shares it).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sora_mini.pretrained import PretrainedMixin
from sora_mini.text.embedding import TextEmbedding, masked_mean
from sora_mini.text.encoders import (
    CAPTION_VOCAB_SIZE,
    TOKENIZER_DIR,
    TextEncoderConfig,
    tokenizer_of,
)
from sora_mini.text.frozen import MINILM_DIM
from sora_mini.text.prompts import tokenize_prompts


@dataclass(frozen=True)
class JointTextConfig:
    """The trained caption transformer (its BERT's size) and the width of the joined tokens."""

    vocab_size: int = CAPTION_VOCAB_SIZE
    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    max_length: int = 96  # caption words, [BOS] and [EOS] included
    dim: int = MINILM_DIM  # the frozen encoder's width (the tokens are joined along the sequence)
    frozen: str = "minilm"  # the frozen encoder (sora_mini.text.frozen.FROZEN_ENCODERS)

    def encoder(self) -> TextEncoderConfig:
        return TextEncoderConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size, layers=self.layers,
                                 heads=self.heads, max_length=self.max_length)


def join(first: TextEmbedding, second: TextEmbedding) -> TextEmbedding:
    """Two token sequences of one batch, one after the other: tokens [B, L1 + L2, D], their masks
    joined, pooled the masked mean of both."""
    if first.tokens.shape[0] != second.tokens.shape[0] or first.dim != second.dim:
        raise ValueError(f"cannot join text tokens {list(first.tokens.shape)} and {list(second.tokens.shape)}: "
                         "the batch and the width must match")
    tokens = torch.cat([first.tokens, second.tokens.to(first.tokens.dtype)], dim=1)
    mask = torch.cat([first.mask, second.mask], dim=1)
    return TextEmbedding(tokens, mask, masked_mean(tokens, mask))


class JointTextEncoder(PretrainedMixin, nn.Module):
    """``encode(prompts) -> TextEmbedding`` of the frozen MiniLM tokens followed by the trained ones.

    ``frozen``: the frozen encoder (``config.frozen``'s, loaded from its package, when None); ``word_tokens(prompts)``
    is the trained half alone (what a training step adds to the cached frozen tokens)."""

    config_class = JointTextConfig

    def __init__(self, config: JointTextConfig = JointTextConfig(), *, frozen=None, tokenizer=None):
        super().__init__()
        from sora_mini.text.encoders import TransformerTextEncoder
        from sora_mini.text.frozen import frozen_encoder

        self.config = config
        frozen = frozen_encoder(config.frozen) if frozen is None else frozen
        if frozen.dim != config.dim:
            raise ValueError(f"the frozen encoder is {frozen.dim} wide but the config joins {config.dim}-wide tokens")
        self._frozen = (frozen,)  # a tuple: not a submodule, so neither trained nor saved
        self.words = TransformerTextEncoder(config.encoder(), tokenizer=tokenizer)
        self.proj = nn.Linear(config.hidden_size, config.dim)
        nn.init.normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    @property
    def frozen(self):
        return self._frozen[0]

    @property
    def tokenizer(self):
        return self.words.tokenizer

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def device(self) -> torch.device:
        return self.proj.weight.device

    def _apply(self, fn, *args, **kwargs):  # .to() / .cuda() move the frozen encoder too
        self.frozen._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def __deepcopy__(self, memo):
        """A copy (the trainer's EMA, its eval model) shares the frozen encoder: it never changes."""
        memo[id(self._frozen)] = self._frozen
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        new.__dict__.update({k: copy.deepcopy(v, memo) for k, v in self.__dict__.items()})
        return new

    def word_tokens(self, prompts, *, allow_empty: bool = True, warn_unknown: bool = True) -> TextEmbedding:
        """The trained half: caption words -> BERT -> ``dim``-wide tokens [B, Lw, dim]."""
        ids, mask = tokenize_prompts(self.tokenizer, prompts, self.config.max_length, allow_empty=allow_empty,
                                     warn_unknown=warn_unknown, device=self.device)
        words = self.words(ids, mask)
        tokens = self.proj(words.tokens)
        return TextEmbedding(tokens, mask, masked_mean(tokens, mask))

    def encode(self, prompts, *, allow_empty: bool = False) -> TextEmbedding:
        """Prompts -> the frozen tokens, then the trained ones (unknown words: one warning)."""
        return join(self.frozen.encode(prompts, allow_empty=allow_empty),
                    self.word_tokens(prompts, allow_empty=allow_empty))

    # -- save / load: the trained half and its tokenizer ----------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return super().save_pretrained(directory)

    @classmethod
    def build_from_pretrained(cls, config, directory: Path):
        return cls(config, tokenizer=tokenizer_of(directory))
