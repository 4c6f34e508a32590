"""A ``VideoDiT`` trained together with the caption transformer of a ``JointTextEncoder``.

The training set caches the frozen MiniLM tokens of every caption (``LatentVideos.text``); a step
adds the trained tokens of its captions (``batch["captions"]``, the empty caption where it was
dropped) and runs the DiT on both, so the diffusion loss trains the caption transformer too.

    JointTextDiT(dit, text)(packed, t, x=, cond=, cond_given=, text=, text_mask=, captions=)

What ``packed_flow_loss`` calls (through ``forward``, for DDP); ``reads_captions`` tells it to pass
the captions. After training, ``.dit`` is the pipeline's transformer and ``.text`` its text encoder.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from sora_mini.text.embedding import TextEmbedding, masked_mean
from sora_mini.text.joint import JointTextEncoder, join

TEXT_ENCODER_DIR = "text_encoder"  # where a snapshot keeps the text encoder of its step


class JointTextDiT(nn.Module):
    """The DiT and the trained half of its text encoder as one module (one optimiser, one EMA)."""

    reads_captions = True

    def __init__(self, dit, text: JointTextEncoder):
        super().__init__()
        if text.dim != dit.config.text_dim:
            raise ValueError(f"the text encoder gives {text.dim}-wide tokens but the DiT reads "
                             f"text_dim={dit.config.text_dim}")
        self.dit, self.text = dit, text
        self.timestep_range = dit.timestep_range  # the objective reads it to scale t

    def forward(self, packed, t, *, text, text_mask, captions, **kw):
        """``text`` [B, Lm, D] / ``text_mask``: the cached frozen tokens; ``captions``: B str."""
        frozen = TextEmbedding(text, text_mask, masked_mean(text, text_mask))
        joined = join(frozen, self.text.word_tokens(captions, warn_unknown=False))
        return self.dit(packed, t, text=joined.tokens, text_mask=joined.mask, **kw)

    def save_pretrained(self, directory) -> Path:
        """The DiT in ``directory`` (as a plain DiT's snapshot) and the text encoder in
        ``directory/text_encoder/``."""
        directory = Path(directory)
        self.dit.save_pretrained(directory)
        self.text.save_pretrained(directory / TEXT_ENCODER_DIR)
        return directory
