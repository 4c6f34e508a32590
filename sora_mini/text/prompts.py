"""Checking and tokenizing prompts: one clear message for each kind of bad input.

``check_prompts(prompts)`` -> the prompts as a list of clean ASCII strings, or a ``PromptError``
(a ``ValueError``) that says what was wrong and what to do:

- not a string / an empty list           -> ``PromptError``
- an empty or blank prompt                -> ``PromptError`` (the *unconditional* caption is not
  a prompt: ask ``NullCondition`` for it, or pass ``allow_empty=True``)
- accented letters ("círcle")             -> transliterated to ASCII, with a ``UserWarning``
- other non-ASCII text (emoji, other scripts) -> ``PromptError`` naming the characters

``tokenize_prompts(tokenizer, prompts, max_length)`` then pads and truncates: a prompt longer than
``max_length`` tokens is cut to the limit with a ``UserWarning`` that says the limit, and (for the
caption tokenizer) words outside the vocabulary become ``[UNK]`` with a ``UserWarning`` naming them.
"""

from __future__ import annotations

import unicodedata
import warnings

import torch


class PromptError(ValueError):
    """A prompt the text encoders cannot take; the message says why and what to do."""


def _to_ascii(text: str, index: int) -> str:
    if text.isascii():
        return text
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    dropped = sorted({c for c in text if not c.isascii() and not unicodedata.combining(c)
                      and not unicodedata.normalize("NFKD", c).encode("ascii", "ignore")})
    if dropped:
        raise PromptError(f"prompt {index} ({text!r}) has non-ASCII characters {dropped} the caption "
                          "vocabulary cannot express; write it in plain English letters, e.g. "
                          "'a red circle moves right'")
    warnings.warn(f"prompt {index} ({text!r}) has accented letters; read as {folded!r}",
                  UserWarning, stacklevel=3)
    return folded


def check_prompts(prompts, *, allow_empty: bool = False) -> list[str]:
    """Validate ``prompts`` (a string or a list of strings) -> a list of ASCII strings."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise PromptError(f"prompts must be a non-empty list of strings, got {prompts!r}")
    out = []
    for i, p in enumerate(prompts):
        if not isinstance(p, str):
            raise PromptError(f"prompt {i} is a {type(p).__name__} ({p!r}), not a string")
        if not p.strip() and not allow_empty:
            raise PromptError(f"prompt {i} is empty; describe the video, e.g. 'a red circle moves "
                              "right' (the unconditional caption of classifier-free guidance comes "
                              "from NullCondition, or encode(..., allow_empty=True))")
        out.append(_to_ascii(p, i).strip())
    return out


def unknown_words(tokenizer, prompts: list[str]) -> list[str]:
    """Words of ``prompts`` that ``tokenizer`` maps to its unknown token (sorted, unique)."""
    unk = tokenizer.unk_token_id
    found = set()
    for p in prompts:
        enc = tokenizer.backend_tokenizer.encode(p)
        found |= {p[a:b].lower() for i, (a, b) in zip(enc.ids, enc.offsets) if i == unk}
    return sorted(found)


def tokenize_prompts(tokenizer, prompts, max_length: int, *, allow_empty: bool = False,
                     warn_unknown: bool = True, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked prompts -> ``(input_ids [B, L] long, mask [B, L] bool)``, ``L <= max_length``,
    padded on the right. Warns on truncation (naming the limit) and on unknown words."""
    prompts = check_prompts(prompts, allow_empty=allow_empty)
    if warn_unknown:
        unknown = unknown_words(tokenizer, prompts)
        if unknown:
            warnings.warn(f"words outside the caption vocabulary {unknown} are read as "
                          f"{tokenizer.unk_token}; use the world's words (see "
                          "sora_mini.world.captions.vocabulary())", UserWarning, stacklevel=2)
    full = tokenizer(prompts, add_special_tokens=True)["input_ids"]
    too_long = [i for i, ids in enumerate(full) if len(ids) > max_length]
    if too_long:
        warnings.warn(f"prompt(s) {too_long} are longer than the text encoder's context of "
                      f"{max_length} tokens ({max(len(full[i]) for i in too_long)} tokens); "
                      f"truncated to {max_length}", UserWarning, stacklevel=2)
    enc = tokenizer(prompts, padding=True, truncation=True, max_length=max_length,
                    return_tensors="pt", return_token_type_ids=False)
    ids, mask = enc["input_ids"], enc["attention_mask"].bool()
    return (ids, mask) if device is None else (ids.to(device), mask.to(device))
