"""Training: the shared loop, atomic checkpoints, and get-or-train artifacts by scale.

``Trainer(model, loss_fn, data, TrainerConfig(...)).fit()`` is the one loop every model uses
(bf16 autocast, EMA, JSONL log, atomic safetensors checkpoints, exact resume);
``sora_mini.artifacts`` loads what a scale needs from ``runs/<scale>/`` or trains it.
"""

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from sora_mini.train.loop import EMA, Trainer, TrainerConfig, train_loop

__all__ = ["EMA", "Trainer", "TrainerConfig", "checkpoint_exists", "load_checkpoint", "save_checkpoint",
           "train_loop"]
