"""Training: the shared loop on one device, and the autoencoder recipe.

``Trainer(model, loss_fn, data, TrainerConfig(...), device=...).fit()`` is the one loop every model
uses: the model and every batch on ``device``, bf16 autocast where the device has it
(``autocast_for``), an EMA with warmup (``EMA``; ``trainer.eval_model()`` holds its weights), a
JSONL log, atomic safetensors checkpoints and exact resume.

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
from sora_mini.train.ema import EMA
from sora_mini.train.loop import Trainer, TrainerConfig

__all__ = ["EMA", "AutoencoderTraining", "Trainer", "TrainerConfig", "autocast_for", "checkpoint_exists",
           "latent_scale_factor", "load_checkpoint", "move_to", "reconstruction_loss", "save_checkpoint",
           "train_autoencoder"]
