"""Re-captioning: a video captioner that writes the world's detailed captions.

    video [B, 3, T, H, W] -> VideoEncoder -> tokens [B, N, C] -> Linear -> memory [B, N, D]
                          (optionally self-attention layers over the memory: video_attention_layers)
    [BOS] w1 w2 ... -> GPT-2 decoder (causal self-attention + cross-attention to memory) -> next word

The decoder is a ``transformers.GPT2LMHeadModel`` built from a ``GPT2Config`` with
``add_cross_attention=True`` over the caption tokenizer's words (no weights downloaded). Training
is teacher forcing: cross-entropy of every next token of the detailed caption (padding ignored;
optionally a focal loss, and an auxiliary motion loss on the video tokens: ``CaptionerConfig``).
``generate`` decodes greedily or by sampling (temperature, top-k, a seeded generator) with its own
short loop. Scoring against the true specs lives in ``sora_mini.text.scoring``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from sora_mini.pretrained import HASH_IF_SET, PretrainedMixin
from sora_mini.text.encoders import CAPTION_VOCAB_SIZE, check_tokenizer, tokenizer_of
from sora_mini.text.prompts import tokenize_prompts
from sora_mini.text.tokenizer import load_tokenizer
from sora_mini.text.video_encoder import VideoEncoder


@dataclass(frozen=True)
class CaptionerConfig:
    """The video encoder and the GPT-2 style decoder."""

    vocab_size: int = CAPTION_VOCAB_SIZE
    video_channels: tuple[int, ...] = (16, 32, 64)
    # how many of the video encoder's stages halve height and width (None: all; VideoEncoder)
    video_downsample: int | None = field(default=None, metadata=HASH_IF_SET)
    # frame differences as three more input channels of the video encoder (None: off; VideoEncoder)
    video_differences: bool | None = field(default=None, metadata=HASH_IF_SET)
    # position features (x, y, t at this many frequencies) appended to each video token (None: none)
    video_positions: int | None = field(default=None, metadata=HASH_IF_SET)
    # weight of an auxiliary loss on the video tokens (None: off): which of the world's motions the
    # caption names, one logit per motion from each token, averaged over the tokens (multi-label
    # cross-entropy). The labels come from the caption itself (parsed with the world's grammar), so
    # the captioner still learns from videos and captions alone. Aimed at the one word of a mover's
    # sentence that tells a move from a turn; measured at small (weight 1, 1000 steps): it slowed every
    # other attribute and did not teach the turn (README)
    motion_loss: float | None = field(default=None, metadata=HASH_IF_SET)
    # focal loss (Lin et al. 2017) on the caption's tokens (None or 0: plain cross-entropy): each
    # token's loss times (1 - p)^gamma, p the probability the model gives the right token, so the
    # tokens it already gets right weigh little and the hard decisions (", then turns" or ".") weigh more.
    # Measured at small (gamma 2, 1000 steps): the other attributes as with plain cross-entropy, the
    # turn no better (README)
    focal_gamma: float | None = field(default=None, metadata=HASH_IF_SET)
    # self-attention layers over the video tokens before the decoder reads them (None or 0: none), so
    # each token can compare itself with every other frame (a turn is early against late direction);
    # give the tokens their places with video_positions, or the attention has no order to go by.
    # Measured at small (2 layers with video_positions=4, 1000 steps): ahead of video_positions alone on
    # region, direction, event time and direction2, motion 0.84 (README)
    video_attention_layers: int | None = field(default=None, metadata=HASH_IF_SET)
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    max_length: int = 96  # tokens, [BOS] and [EOS] included
    dropout: float = 0.0
    # the order its captions list objects in (sora_mini.world.captions.CAPTION_ORDERS): "color", the
    # palette's, is one the video shows; "scene" (the spec's own, arbitrary) leaves the first words a guess
    object_order: str = "color"

    def __post_init__(self):
        from sora_mini.world.captions import CAPTION_ORDERS

        if self.object_order not in CAPTION_ORDERS:
            raise ValueError(f"unknown object_order {self.object_order!r}; choose one of {', '.join(CAPTION_ORDERS)}")
        if self.video_attention_layers is not None and (isinstance(self.video_attention_layers, bool) or not isinstance(
                self.video_attention_layers, int) or self.video_attention_layers < 0):
            raise ValueError(f"video_attention_layers must be a number of layers >= 0, got {self.video_attention_layers!r}")
        if self.focal_gamma is not None and not self.focal_gamma >= 0:
            raise ValueError(f"focal_gamma must be >= 0 (0 or None: plain cross-entropy), got {self.focal_gamma!r}")
        if self.motion_loss is not None and not self.motion_loss > 0:
            raise ValueError(f"motion_loss is the auxiliary loss's weight: give a number > 0 or None (off), "
                             f"got {self.motion_loss!r}")

    def gpt2_config(self, tokenizer):
        from transformers import GPT2Config

        return GPT2Config(vocab_size=self.vocab_size, n_positions=self.max_length, n_embd=self.hidden_size,
                          n_layer=self.layers, n_head=self.heads, add_cross_attention=True,
                          resid_pdrop=self.dropout, embd_pdrop=self.dropout, attn_pdrop=self.dropout,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)


def caption_motions(captions) -> torch.Tensor:
    """``[B, len(MOTIONS)]`` 0/1: which of the world's motions each caption names (its objects'
    motions, parsed with the world's grammar): the auxiliary loss's labels."""
    from sora_mini.world import MOTIONS
    from sora_mini.world.captions import parse_caption

    out = torch.zeros(len(captions), len(MOTIONS))
    for i, caption in enumerate(captions):
        for obj in parse_caption(caption).objects:
            if obj.motion is not None:
                out[i, MOTIONS.index(obj.motion)] = 1.0
    return out


class VideoCaptioner(PretrainedMixin, nn.Module):
    """``loss(videos, captions) -> (loss, metrics)``; ``generate(videos) -> list[str]``."""

    config_class = CaptionerConfig

    def __init__(self, config: CaptionerConfig = CaptionerConfig(), tokenizer=None):
        super().__init__()
        from transformers import GPT2LMHeadModel

        self.config = config
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
        check_tokenizer(self.tokenizer, config.vocab_size, type(self).__name__)
        self.video = VideoEncoder(config.video_channels, config.video_downsample,
                                  bool(config.video_differences), config.video_positions or 0)
        self.memory_proj = nn.Linear(self.video.dim, config.hidden_size)
        self.video_attention = None
        if config.video_attention_layers:
            layer = nn.TransformerEncoderLayer(config.hidden_size, config.heads, 4 * config.hidden_size, dropout=0.0,
                                               activation="gelu", batch_first=True, norm_first=True)
            self.video_attention = nn.TransformerEncoder(layer, config.video_attention_layers,
                                                         enable_nested_tensor=False)
        self.decoder = GPT2LMHeadModel(config.gpt2_config(self.tokenizer))
        if config.motion_loss is not None:
            from sora_mini.world import MOTIONS

            self.motion_head = nn.Linear(self.video.dim, len(MOTIONS))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def memory(self, videos: torch.Tensor | None = None, *, video_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """What the decoder cross-attends to: ``[B, N, hidden_size]``, from ``videos`` or from the
        video encoder's ``video_tokens`` [B, N, C] computed before (a frozen encoder's, cached)."""
        if video_tokens is None:
            video_tokens = self.video(videos)[0]
        memory = self.memory_proj(video_tokens.to(self.memory_proj.weight.dtype))
        return memory if self.video_attention is None else self.video_attention(memory)

    @property
    def video_frozen(self) -> bool:
        """True when no weight of the video encoder trains (its tokens can be computed once)."""
        return not any(p.requires_grad for p in self.video.parameters())

    def logits(self, memory: torch.Tensor, input_ids: torch.Tensor, mask=None) -> torch.Tensor:
        out = self.decoder(input_ids=input_ids, attention_mask=None if mask is None else mask.long(),
                           encoder_hidden_states=memory, use_cache=False)
        return out.logits  # [B, L, vocab]

    def loss(self, videos: torch.Tensor | None, captions, *, video_tokens: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict]:
        """Teacher forcing: mean cross-entropy of each next token of ``captions`` (the videos, or
        their ``video_tokens``: see :meth:`memory`)."""
        ids, mask = tokenize_prompts(self.tokenizer, captions, self.config.max_length, device=self.device)
        if video_tokens is None:
            video_tokens = self.video(videos)[0]
        logits = self.logits(self.memory(video_tokens=video_tokens), ids, mask)[:, :-1].float()
        target = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        valid = target != -100
        tokens = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1),
                                             ignore_index=-100, reduction="none")
        if self.config.focal_gamma:  # -(1 - p)^gamma log p, with p = exp(-cross-entropy)
            tokens = tokens * (1 - torch.exp(-tokens)) ** self.config.focal_gamma
        loss = tokens.sum() / valid.sum().clamp(min=1)
        acc = ((logits.argmax(-1) == target) & valid).sum() / valid.sum().clamp(min=1)
        metrics = {"token_acc": acc.item()}
        if self.config.motion_loss is not None:
            aux = nn.functional.binary_cross_entropy_with_logits(self.motion_logits(video_tokens).float(),
                                                                 caption_motions(captions).to(self.device))
            loss = loss + self.config.motion_loss * aux
            metrics["motion_loss"] = aux.item()
        return loss, metrics

    def motion_logits(self, video_tokens: torch.Tensor) -> torch.Tensor:
        """``[B, len(MOTIONS)]``: the auxiliary head's score for each motion (``config.motion_loss``),
        one per token, averaged over the tokens."""
        return self.motion_head(video_tokens.to(self.motion_head.weight.dtype)).mean(1)

    @torch.no_grad()
    def generate(self, videos: torch.Tensor, *, greedy: bool = True, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None,
                 max_length: int | None = None, num_beams: int = 1) -> list[str]:
        """Captions of ``videos [B, 3, T, H, W]``: greedy, or sampled (``temperature``, ``top_k``;
        the same ``seed`` gives the same captions). Stops at ``[EOS]`` or ``max_length`` tokens.

        ``num_beams > 1`` (with ``greedy``) runs beam search: it keeps the ``num_beams`` most
        likely prefixes at every step and returns the most likely whole caption (summed log
        probabilities, no length normalisation). Greedy commits to each token as it comes: a
        "," that opens ", then turns ... late" at 0.6 against "." at 0.4 is taken, however
        unsure the words after it; beam search weighs the whole clause."""
        if not greedy and temperature <= 0:
            raise ValueError(f"temperature must be > 0 for sampling, got {temperature}; use greedy=True")
        if isinstance(num_beams, bool) or not isinstance(num_beams, int) or num_beams < 1:
            raise ValueError(f"num_beams must be a positive integer, got {num_beams!r} (1: greedy decoding)")
        if num_beams > 1 and not greedy:
            raise ValueError("beam search (num_beams > 1) is a greedy decoding; pass greedy=True, or num_beams=1 "
                             "to sample")
        was_training = self.training
        self.eval()
        tok = self.tokenizer
        max_length = min(max_length or self.config.max_length, self.config.max_length)
        gen = torch.Generator(device="cpu").manual_seed(seed) if seed is not None else None
        memory = self.memory(videos.to(self.device))
        ids = (self._beam_search(memory, num_beams, max_length) if num_beams > 1
               else self._decode(memory, greedy, temperature, top_k, gen, max_length))
        self.train(was_training)
        return [tok.decode(row, skip_special_tokens=True).strip() for row in ids.tolist()]

    def _decode(self, memory: torch.Tensor, greedy: bool, temperature: float, top_k, gen,
                max_length: int) -> torch.Tensor:
        """Token ids [B, L], one token at a time: the likeliest (greedy) or sampled."""
        tok = self.tokenizer
        b = memory.shape[0]
        ids = torch.full((b, 1), tok.bos_token_id, dtype=torch.long, device=self.device)
        done = torch.zeros(b, dtype=torch.bool, device=self.device)
        while ids.shape[1] < max_length and not done.all():
            logits = self.logits(memory, ids, torch.ones_like(ids, dtype=torch.bool))[:, -1].float()
            if greedy:
                nxt = logits.argmax(-1)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = logits.softmax(-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1).to(self.device)
            nxt = nxt.masked_fill(done, tok.pad_token_id)
            ids = torch.cat([ids, nxt[:, None]], 1)
            done |= nxt == tok.eos_token_id
        return ids

    def _beam_search(self, memory: torch.Tensor, k: int, max_length: int) -> torch.Tensor:
        """Token ids [B, L] of the most likely caption per video among ``k`` beams."""
        tok = self.tokenizer
        b = memory.shape[0]
        memory = memory.repeat_interleave(k, 0)  # beam j of video i is row i * k + j
        ids = torch.full((b * k, 1), tok.bos_token_id, dtype=torch.long, device=self.device)
        scores = torch.full((b, k), float("-inf"), device=self.device)
        scores[:, 0] = 0.0  # one live beam at the start, so the first step does not pick k copies
        done = torch.zeros(b * k, dtype=torch.bool, device=self.device)
        rows = torch.arange(b, device=self.device)[:, None] * k
        while ids.shape[1] < max_length and not done.all():
            logp = self.logits(memory, ids, torch.ones_like(ids, dtype=torch.bool))[:, -1].float().log_softmax(-1)
            logp[done] = float("-inf")
            logp[done, tok.pad_token_id] = 0.0  # a finished caption carries on unchanged, as padding
            vocab = logp.shape[-1]
            top = (scores.reshape(-1, 1) + logp).reshape(b, k * vocab).topk(k, dim=1)
            source = (rows + torch.div(top.indices, vocab, rounding_mode="floor")).reshape(-1)
            token = (top.indices % vocab).reshape(-1)
            ids = torch.cat([ids[source], token[:, None]], 1)
            done = done[source] | (token == tok.eos_token_id)
            scores = top.values
        return ids[rows[:, 0] + scores.argmax(1)]

    def save_pretrained(self, directory: str | os.PathLike):
        self.tokenizer.save_pretrained(str(os.path.join(directory, "tokenizer")))
        return super().save_pretrained(directory)

    @classmethod
    def build_from_pretrained(cls, config, directory: Path):
        return cls(config, tokenizer=tokenizer_of(directory))
