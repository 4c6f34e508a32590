"""Training the text parts through the shared :class:`Trainer` (bf16 autocast, log, checkpoints).

``train_clip(model, data, recipe)``: symmetric InfoNCE on world videos and their captions.
``train_captioner(model, data, recipe)``: teacher forcing on (video, detailed caption).
``data`` is a ``sora_mini.text.data.CaptionedVideos``; ``recipe`` a ``TextTrainConfig``.
Batches are deterministic in the step, so a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

import torch

from sora_mini.text.config import TextTrainConfig
from sora_mini.train.loop import Trainer, TrainerConfig

CAPTION_KINDS = ("short", "detailed", "both")
DEFAULT_RECIPE = TextTrainConfig()


def _trainer_config(recipe: TextTrainConfig, precision: str, progress: bool, desc: str) -> TrainerConfig:
    return TrainerConfig(steps=recipe.steps, lr=recipe.lr, weight_decay=recipe.weight_decay,
                         warmup_steps=recipe.warmup_steps, grad_clip=1.0, precision=precision,
                         log_every=max(1, min(50, recipe.steps // 20)), progress=progress, desc=desc)


def _captions(batch: dict, kind: str, step: int, order: str = "scene") -> list[str]:
    """The batch's captions of ``kind``; detailed ones with their objects in ``order``
    (``sora_mini.world.captions.caption_objects``)."""
    if kind not in CAPTION_KINDS:
        raise ValueError(f"unknown caption kind {kind!r}; choose one of {', '.join(CAPTION_KINDS)}")
    if kind == "both":
        kind = "short" if step % 2 == 0 else "detailed"
    if kind == "detailed" and order != "scene":
        from sora_mini.world.captions import detailed_caption

        return [detailed_caption(spec, order) for spec in batch["specs"]]
    return batch[kind]


def _fit(model, loss, data, recipe, *, caption, precision, device, ckpt_path, log_path, progress,
         desc, callbacks, order: str = "scene", inputs=None):
    """``inputs(batch) -> tensor``: what ``loss`` gets for the batch's videos (default the videos)."""
    model.to(device)

    def batches(step):
        b = data.batch(step, recipe.batch_size)
        x = b["video"] if inputs is None else inputs(b)
        return x.to(device), _captions(b, caption, step, order)

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
    """Train a ``VideoCaptioner`` by teacher forcing on detailed captions, their objects in the
    model's ``config.object_order`` -> history rows. A frozen video encoder (``video_frozen``, as
    ``TextTrainConfig.freeze_video`` leaves it) encodes every video once, before the first step:
    the steps then train the decoder on those tokens, as the video model trains on cached latents."""
    loss, inputs = (lambda m, v, c: m.loss(v, c)), None
    if model.video_frozen:
        tokens = video_tokens(model.video, data, device=device)
        loss = lambda m, t, c: m.loss(None, c, video_tokens=t)
        inputs = lambda b: torch.stack([tokens[i] for i in b["index"]])
    return _fit(model, loss, data, recipe, caption="detailed", precision=precision, device=device,
                ckpt_path=ckpt_path, log_path=log_path, progress=progress, desc="captioner", callbacks=callbacks,
                order=model.config.object_order, inputs=inputs)


@torch.no_grad()
def video_tokens(encoder, data, *, device="cpu", batch_size: int = 64) -> list:
    """``encoder``'s tokens [N, C] (bf16, on the CPU) of every video of ``data``, in order."""
    out: list = [None] * len(data)
    for size in data.sizes:
        idx = data.buckets[size]
        for j in range(0, len(idx), batch_size):
            chunk = idx[j:j + batch_size]
            videos = data.items(chunk)["video"].to(device)
            for i, t in zip(chunk, encoder(videos)[0]):
                out[i] = t.to("cpu", torch.bfloat16)
    return out
