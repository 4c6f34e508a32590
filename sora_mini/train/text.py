"""Training the text parts through the shared :class:`Trainer` (bf16 autocast, log, checkpoints).

``train_clip(model, data, recipe)``: symmetric InfoNCE on world videos and their captions.
``train_captioner(model, data, recipe)``: teacher forcing on (video, detailed caption).
``data`` is a ``sora_mini.text.data.CaptionedVideos``; ``recipe`` a ``TextTrainConfig``.
Batches are deterministic in the step, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from sora_mini.text.config import TextTrainConfig
from sora_mini.train.loop import Trainer, TrainerConfig

CAPTION_KINDS = ("short", "detailed", "both")
DEFAULT_RECIPE = TextTrainConfig()


def _trainer_config(recipe: TextTrainConfig, precision: str, progress: bool, desc: str) -> TrainerConfig:
    return TrainerConfig(steps=recipe.steps, lr=recipe.lr, weight_decay=recipe.weight_decay,
                         warmup_steps=recipe.warmup_steps, grad_clip=1.0, precision=precision,
                         log_every=max(1, min(50, recipe.steps // 20)), progress=progress, desc=desc)


def _captions(batch: dict, kind: str, step: int) -> list[str]:
    if kind not in CAPTION_KINDS:
        raise ValueError(f"unknown caption kind {kind!r}; choose one of {', '.join(CAPTION_KINDS)}")
    if kind == "both":
        kind = "short" if step % 2 == 0 else "detailed"
    return batch[kind]


def _fit(model, loss, data, recipe, *, caption, precision, device, ckpt_path, log_path, progress,
         desc, callbacks):
    model.to(device)

    def batches(step):
        b = data.batch(step, recipe.batch_size)
        return b["video"].to(device), _captions(b, caption, step)

    def loss_fn(m, batch):
        return loss(m, *batch)

    trainer = Trainer(model, loss_fn, batches, _trainer_config(recipe, precision, progress, desc),
                      device=device, ckpt_path=ckpt_path, log_path=log_path,
                      model_config={"class": type(model).__name__}, callbacks=callbacks)
    return trainer.fit()


def train_clip(model, data, recipe: TextTrainConfig = DEFAULT_RECIPE, *, precision: str = "bf16",
               device="cpu", ckpt_path=None, log_path=None, progress: bool = True, callbacks=()) -> list[dict]:
    """Train a ``VideoTextCLIP`` contrastively for ``recipe.steps`` steps -> history rows.

    ``recipe.caption``: train on short captions, detailed ones, or both (alternating steps).
    """
    return _fit(model, lambda m, v, c: m.loss(v, c), data, recipe, caption=recipe.caption,
                precision=precision, device=device, ckpt_path=ckpt_path, log_path=log_path,
                progress=progress, desc="clip", callbacks=callbacks)


def train_captioner(model, data, recipe: TextTrainConfig = DEFAULT_RECIPE, *, precision: str = "bf16",
                    device="cpu", ckpt_path=None, log_path=None, progress: bool = True,
                    callbacks=()) -> list[dict]:
    """Train a ``VideoCaptioner`` by teacher forcing on detailed captions -> history rows."""
    return _fit(model, lambda m, v, c: m.loss(v, c), data, recipe, caption="detailed",
                precision=precision, device=device, ckpt_path=ckpt_path, log_path=log_path,
                progress=progress, desc="captioner", callbacks=callbacks)
