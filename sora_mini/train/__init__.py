"""Training: the shared loop on one device or several processes, and the autoencoder recipe.

``Trainer(model, loss_fn, data, TrainerConfig(...), device=...).fit()`` is the one loop every model
uses: the model and every batch on ``device``, bf16 autocast where the device has it
(``autocast_for``), an EMA with warmup (``EMA``; ``trainer.eval_model()`` holds its weights), a
budget in steps or minutes, a JSONL log with throughput, a stop on a non-finite loss that keeps the
last good checkpoint, atomic safetensors checkpoints and exact resume. Under torchrun,
``init_distributed``, ``wrap_ddp`` and ``cleanup`` (``distributed``) run the same loop with DDP, each
rank on its shard of the global batch (docs/training.md).

The autoencoder recipe: ``train_autoencoder(model, batches, AutoencoderTraining(...))`` and
``latent_scale_factor(model, videos)`` (the ``1 / std`` of its latents, to set with
``model.set_scale_factor``). ``sora_mini.artifacts`` loads what a scale needs from ``runs/<scale>/``
or trains it.
"""

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from sora_mini.train.autoencoder import (
    AutoencoderTraining,
    latent_scale_factor,
    reconstruction_loss,
    train_autoencoder,
)
from sora_mini.train.device import autocast_for, move_to
from sora_mini.train.distributed import cleanup, init_distributed, shard, wrap_ddp
from sora_mini.train.ema import EMA
from sora_mini.train.loop import Trainer, TrainerConfig

__all__ = ["EMA", "AutoencoderTraining", "Trainer", "TrainerConfig", "autocast_for", "checkpoint_exists",
           "cleanup", "init_distributed", "latent_scale_factor", "load_checkpoint", "move_to",
           "reconstruction_loss", "save_checkpoint", "shard", "train_autoencoder", "wrap_ddp"]
