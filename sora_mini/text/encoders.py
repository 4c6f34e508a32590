"""A small transformer text encoder, trained from scratch jointly with the diffusion model.

``TransformerTextEncoder(TextEncoderConfig())`` is a ``transformers.BertModel`` built from a
``BertConfig`` (no weights downloaded) over the caption tokenizer's word ids:

    prompts --tokenize--> ids [B, L] --BERT--> tokens [B, L, D] --masked mean--> pooled [B, D]

It follows the save/load convention of ``sora_mini.pretrained`` and also saves its tokenizer in
``<dir>/tokenizer/``, so a saved encoder reads the words it was trained on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sora_mini.pretrained import PretrainedMixin
from sora_mini.text.embedding import TextEmbedding, masked_mean
from sora_mini.text.prompts import tokenize_prompts
from sora_mini.text.tokenizer import load_tokenizer

CAPTION_VOCAB_SIZE = 65  # len(load_tokenizer()): checked when an encoder is built, and by a test
TOKENIZER_DIR = "tokenizer"


@dataclass(frozen=True)
class TextEncoderConfig:
    """Size of the transformer text encoder (``dim = hidden_size``)."""

    vocab_size: int = CAPTION_VOCAB_SIZE
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    mlp_ratio: int = 4
    max_length: int = 96  # context in tokens, [BOS] and [EOS] included
    dropout: float = 0.0

    def __post_init__(self):
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be a multiple of heads {self.heads}")
        if self.max_length < 3:
            raise ValueError(f"max_length {self.max_length} leaves no room for a word between [BOS] "
                             "and [EOS]; use at least 3")

    def bert_config(self, pad_token_id: int = 0):
        from transformers import BertConfig

        return BertConfig(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                          num_hidden_layers=self.layers, num_attention_heads=self.heads,
                          intermediate_size=self.mlp_ratio * self.hidden_size,
                          max_position_embeddings=self.max_length, type_vocab_size=1,
                          hidden_dropout_prob=self.dropout, attention_probs_dropout_prob=self.dropout,
                          pad_token_id=pad_token_id)


def check_tokenizer(tokenizer, vocab_size: int, owner: str) -> None:
    if len(tokenizer) != vocab_size:
        raise ValueError(f"{owner} expects a vocabulary of {vocab_size} tokens but the tokenizer has "
                         f"{len(tokenizer)}; build the config with vocab_size=len(tokenizer) or load "
                         "the tokenizer it was trained with")


class TransformerTextEncoder(PretrainedMixin, nn.Module):
    """``encode(prompts) -> TextEmbedding(tokens [B, L, D], mask [B, L], pooled [B, D])``."""

    config_class = TextEncoderConfig

    def __init__(self, config: TextEncoderConfig = TextEncoderConfig(), tokenizer=None):
        super().__init__()
        from transformers import BertModel

        self.config = config
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        check_tokenizer(self.tokenizer, config.vocab_size, type(self).__name__)
        self.bert = BertModel(config.bert_config(self.tokenizer.pad_token_id), add_pooling_layer=False)

    @property
    def dim(self) -> int:
        return self.config.hidden_size

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def tokenize(self, prompts, *, allow_empty: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Checked prompts -> ``(ids [B, L], mask [B, L] bool)`` on the encoder's device."""
        return tokenize_prompts(self.tokenizer, prompts, self.max_length, allow_empty=allow_empty,
                                device=self.device)

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> TextEmbedding:
        tokens = self.bert(input_ids=input_ids, attention_mask=mask.long()).last_hidden_state
        return TextEmbedding(tokens, mask, masked_mean(tokens, mask))

    def encode(self, prompts, *, allow_empty: bool = False) -> TextEmbedding:
        """Prompts (see ``sora_mini.text.prompts`` for what is refused or warned about) -> embedding."""
        return self(*self.tokenize(prompts, allow_empty=allow_empty))

    # -- save / load with the tokenizer --------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        self.tokenizer.save_pretrained(str(directory / TOKENIZER_DIR))
        return super().save_pretrained(directory)

    @classmethod
    def build_from_pretrained(cls, config, directory: Path):
        return cls(config, tokenizer=tokenizer_of(directory))


def tokenizer_of(directory: Path):
    """The tokenizer saved in ``<directory>/tokenizer/`` (``None``: the shipped one)."""
    d = Path(directory) / TOKENIZER_DIR
    return load_tokenizer(d) if (d / "tokenizer.json").is_file() else None
