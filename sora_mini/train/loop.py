"""The shared training loop: AdamW, bf16 autocast, gradient clipping, EMA, progress, JSONL log,
atomic checkpoints and exact resume, on one device or on several processes (DDP, see
:mod:`sora_mini.train.distributed`). Every model of the workbook trains through :class:`Trainer`.

What the caller brings: a ``model`` (or a DDP-wrapped one); ``loss_fn(model, batch) -> (loss,
metrics)``, a scalar tensor and a dict of floats to log (``metrics["tokens"]``, the real tokens of
the batch, gives ``tokens_per_s`` and, with ``flops_per_token``, ``model_flops_per_s``); and
``data``, either ``data(step) -> batch`` (deterministic in ``step``, so a resumed run sees the same
batches as an uninterrupted one) or any iterable of batches (cycled). A batch is a tensor or a
dict / list / tuple of them (nested); the trainer moves it to its device.

The loop follows nanoGPT's ``train.py``: warmup then cosine learning rate, clip, step. The budget
is ``steps``, or ``minutes``: the first ``calibration_steps`` steps measure the rate and the
schedule is spread over the steps predicted to fit. A non-finite loss or gradient norm stops the
run before the weights change, so the last checkpoint on disk stays the last good one.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sora_mini.checkpoint import (
    checkpoint_exists,
    load_checkpoint,
    require_same_config,
    save_checkpoint,
)
from sora_mini.train.device import (
    PRECISIONS,
    autocast_for,
    check_precision,
    move_to,
    resolve_precision,
    unwrap,
)
from sora_mini.train.distributed import (
    min_over_ranks,
    rank_and_world,
    shard,
    step_seed,
    sum_over_ranks,
)
from sora_mini.train.ema import EMA
from sora_mini.train.optimizer import adamw, flatten_optimizer, unflatten_optimizer
from sora_mini.train.progress import LogWindow, progress_postfix

__all__ = ["EMA", "PRECISIONS", "Trainer", "TrainerConfig", "autocast_for", "lr_factor", "move_to"]


@dataclass(frozen=True)
class TrainerConfig:
    """How to train (not what): budget, optimiser, schedule, precision, logging, checkpoints."""

    steps: int = 100  # the budget, unless minutes is set
    minutes: float | None = None  # budget in wall-clock minutes of training (steps is then unused)
    calibration_steps: int = 5  # with minutes: steps timed to predict how many fit
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    lr_schedule: str = "cosine"  # "cosine" (to min_lr_ratio * lr) or "constant", after warmup
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0  # max global grad norm; None to skip
    # "bf16": bf16 autocast where the device has native bf16 (measured 2.5x faster than fp32 on such
    # a CPU), fp32 elsewhere; "bf16-always" insists; "fp32" (sora_mini.train.device.resolve_precision)
    precision: str = "bf16"
    ema_decay: float | None = None  # keep an exponential moving average of the weights
    ema_warmup: bool = True  # EMA decay min(ema_decay, (1 + n) / (10 + n)) at update n (see EMA)
    log_every: int = 10
    ckpt_every: int = 0  # also save every n steps (0: only at the end)
    progress: bool = True
    desc: str = "train"
    seed: int = 0  # with several processes: each rank's RNG at step s is seeded from (seed, s, rank)

    def __post_init__(self):
        check_precision(self.precision)
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; use 'cosine' or 'constant'")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ValueError(f"minutes must be > 0 (or None to train for `steps`), got {self.minutes}")
        if self.calibration_steps < 1:
            raise ValueError(f"calibration_steps must be >= 1, got {self.calibration_steps}")


def lr_factor(step: int, cfg: TrainerConfig, total_steps: float | None = None) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warmup, then cosine to
    ``min_lr_ratio`` at ``total_steps`` (default ``cfg.steps``; ``math.inf`` while a minutes budget
    is being calibrated: the warmup, then the peak, where the cosine starts)."""
    total = cfg.steps if total_steps is None else total_steps
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or total <= cfg.warmup_steps:
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ----------------------------------------------------------------------------------------------
class Trainer:
    """Run ``config.steps`` optimiser steps (or ``config.minutes`` of them) of ``loss_fn(model,
    next batch)`` on ``device``.

    The model is moved to ``device`` here and every batch before ``loss_fn`` sees it (see
    :func:`move_to`); autocast follows the device (:func:`autocast_for`).
    ``ckpt_path``: where :meth:`save` writes the full training state (model, optimizer, EMA,
    step, RNG, log window) as ``.safetensors`` + ``.json``; :meth:`fit` resumes from it when it
    exists, after checking it was written for the same ``model_config`` (a changed trainer config,
    e.g. more steps or a lower lr, is taken as given).
    ``log_path``: a JSONL file, one line per ``log_every`` steps (step, loss, lr, grad_norm, metrics,
    tokens and their rate, time). ``flops_per_token``: the model's forward + backward FLOPs per
    token (about 6 x its parameters), for ``model_flops_per_s``.
    ``callbacks``: ``fn(trainer, step, metrics)`` after every step (evaluation, early stop by
    setting ``trainer.stop = True``). ``model_config`` is stored with checkpoints.
    :meth:`eval_model` is the model to evaluate, sample from or save: the EMA weights when
    ``config.ema_decay`` is set.
    Under torchrun (a process group of N > 1, :mod:`sora_mini.train.distributed`), each rank trains
    on its shard of ``data``'s global batch and rank 0 alone logs and saves.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, data, config: TrainerConfig, *,
                 device: str | torch.device = "cpu", ckpt_path=None, log_path=None,
                 model_config: dict | None = None, callbacks=(), optimizer=None,
                 flops_per_token: float | None = None):
        self.device = torch.device(device)
        self.model, self.loss_fn, self.data, self.config = model.to(self.device), loss_fn, data, config
        self.ckpt_path = Path(ckpt_path) if ckpt_path is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.model_config = model_config or {}
        self.callbacks = list(callbacks)
        self.optimizer = optimizer or adamw(model, config.lr, config.weight_decay, config.betas)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.ema = EMA(model, config.ema_decay, config.ema_warmup) if config.ema_decay is not None else None
        self.rank, self.world_size = rank_and_world()
        self.step = 0
        self.total_steps: int | None = config.steps if config.minutes is None else None  # None: calibrating
        self.elapsed_s = 0.0  # seconds of training, over every resumed part of the run
        self.saved_step: int | None = None  # the step of the checkpoint at ckpt_path
        self.stop = False
        self.history: list[dict] = []
        self.window = LogWindow(flops_per_token)
        self._iter = None

    # ------------------------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        """What the config's precision runs as on this device: "bf16" or "fp32" (``resolve_precision``)."""
        return resolve_precision(self.device, self.config.precision)

    def autocast(self):
        """The autocast context of the config's precision on this trainer's device."""
        return autocast_for(self.device, self.config.precision)

    def next_batch(self):
        """This rank's shard of the batch of the current step, on the trainer's device."""
        if callable(self.data) and not hasattr(self.data, "__iter__"):
            batch = self.data(self.step)
        else:
            if self._iter is None:
                self._iter = iter(self.data)
            try:
                batch = next(self._iter)
            except StopIteration:  # an epoch ended: start the next one
                self._iter = iter(self.data)
                batch = next(self._iter)
        return move_to(shard(batch, self.rank, self.world_size), self.device)

    def eval_model(self) -> nn.Module:
        """The model to evaluate, sample from or save, in eval mode: a copy holding the EMA weights
        when the config keeps an EMA (the training model is left as it is), else the model itself."""
        model = unwrap(self.model)
        if self.ema is None:
            return model.eval()
        shadow = copy.deepcopy(model)
        self.ema.copy_to(shadow)
        return shadow.eval()

    def train_step(self, batch) -> dict[str, float]:
        """One optimiser step on ``batch``; returns the logged figures (the loss averaged over ranks,
        ``tokens`` summed). Raises ``FloatingPointError`` before changing the weights when the loss or
        the gradient norm is not finite."""
        cfg = self.config
        self.model.train()
        if self.world_size > 1:  # each rank draws its own noise, the same after a resume
            torch.manual_seed(step_seed(cfg.seed, self.step, self.rank))
        total = math.inf if self.total_steps is None else self.total_steps
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * lr_factor(self.step, cfg, total)
        with self.autocast():
            loss, metrics = self.loss_fn(self.model, batch)
        metrics = {k: float(v) for k, v in metrics.items()}
        loss_value = self._global_loss(loss, metrics)
        self._require_finite("loss", loss_value)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        max_norm = math.inf if cfg.grad_clip is None else cfg.grad_clip  # inf: measure, do not clip
        grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), max_norm))
        self._require_finite("gradient norm", grad_norm)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return {"loss": loss_value, **metrics, "lr": self.optimizer.param_groups[0]["lr"],
                "grad_norm": grad_norm}

    def _global_loss(self, loss: torch.Tensor, metrics: dict[str, float]) -> float:
        """The loss averaged over the ranks, ``metrics["tokens"]`` summed in place (one all_reduce).
        A non-finite loss on any rank makes every rank's non-finite, so all of them stop together."""
        loss_sum, tokens = sum_over_ranks([float(loss.detach()), metrics.get("tokens", 0.0)], self.device)
        if "tokens" in metrics:
            metrics["tokens"] = tokens
        return loss_sum / self.world_size

    def _require_finite(self, what: str, value: float) -> None:
        if math.isfinite(value):
            return
        if self.ckpt_path is None:
            kept = "no checkpoint is written (no ckpt_path)"
        elif self.saved_step is None:
            kept = f"no checkpoint was written yet to {self.ckpt_path}"
        else:
            kept = (f"the last good checkpoint {self.ckpt_path} (step {self.saved_step}) is kept; "
                    "a rerun resumes from it")
        lr = self.optimizer.param_groups[0]["lr"]
        raise FloatingPointError(
            f"{what} is {value} at step {self.step} (batch data({self.step})), before the weights changed; "
            f"{kept}. Lower the learning rate (lr={self.config.lr:g}, {lr:.3g} at this step) or train with "
            "precision='fp32'")

    # ------------------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train to the budget (resuming from ``ckpt_path`` if it holds a checkpoint)."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.ckpt_path is not None and checkpoint_exists(self.ckpt_path):
            self.load(self.ckpt_path)
        bar = tqdm(total=self.total_steps, initial=self.step, desc=cfg.desc,
                   disable=not (cfg.progress and self.rank == 0), leave=False)
        clock0 = time.perf_counter() - self.elapsed_s
        self.window.start_clock()
        calibration = [self.elapsed_s]  # elapsed seconds now, then after each calibration step
        while not self.stop and (self.total_steps is None or self.step < self.total_steps):
            metrics = self.train_step(self.next_batch())
            self.step += 1
            self.elapsed_s = time.perf_counter() - clock0
            self.window.add(metrics)
            for cb in self.callbacks:
                cb(self, self.step, metrics)
            bar.update(1)
            prediction = {}
            if self.total_steps is None:
                calibration.append(self.elapsed_s)
                prediction = self._predict_steps(calibration)
                if prediction:
                    bar.total = self.total_steps
                    bar.refresh()
            if prediction or self.step % cfg.log_every == 0 or self.step == self.total_steps or self.stop:
                row = {**self.window.row(self.step, self.elapsed_s), **prediction}
                self.history.append(row)
                bar.set_postfix(progress_postfix(row))
                self._log(row)
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                self.save()
        bar.close()
        self.save()
        return self.history

    def _predict_steps(self, calibration: list[float]) -> dict[str, float]:
        """After ``calibration_steps`` timed steps: set ``total_steps`` to the steps that fit in the
        minutes, counted from the run's start (the first step, which pays one-time costs, is left
        out of the rate when there are others; every rank takes the smallest prediction)."""
        n = len(calibration) - 1
        if n < self.config.calibration_steps:
            return {}
        s_per_step = (calibration[-1] - calibration[1 if n > 1 else 0]) / max(1, n - 1)
        left_s = self.config.minutes * 60 - self.elapsed_s
        predicted = self.step + max(0, int(left_s // max(s_per_step, 1e-9)))
        self.total_steps = min_over_ranks(predicted, self.device)
        return {"predicted_steps": self.total_steps, "calibration_s_per_step": s_per_step}

    def _log(self, row: dict) -> None:
        if self.log_path is None or self.rank != 0:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()
            os.fsync(f.fileno())

    # ------------------------------------------------------------------------------------------
    def state_tensors(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Everything needed to resume, as flat tensors plus JSON-able metadata."""
        tensors = {f"model/{k}": v for k, v in unwrap(self.model).state_dict().items()}
        if self.ema is not None:
            tensors.update({f"ema/{k}": v for k, v in self.ema.state_dict().items()})
        opt_tensors, opt_meta = flatten_optimizer(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng/torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"step": self.step, "optimizer": opt_meta, "history": self.history,
                "trainer": dataclasses.asdict(self.config),
                "ema_updates": self.ema.num_updates if self.ema is not None else None,
                "predicted_steps": self.total_steps if self.config.minutes is not None else None,
                "elapsed_s": self.elapsed_s, "window": self.window.state_dict(),
                "world_size": self.world_size}
        return tensors, meta

    def save(self, path=None) -> Path | None:
        """Write the training state atomically (from rank 0 only, when there are several processes)."""
        path = Path(path) if path is not None else self.ckpt_path
        if path is None:
            return None
        written = None
        if self.rank == 0:
            tensors, meta = self.state_tensors()
            written = save_checkpoint(path, tensors, self.model_config, meta)
        if path == self.ckpt_path:
            self.saved_step = self.step
        return written

    def load(self, path) -> None:
        """Restore model, optimizer, EMA, step, RNG, history and log window from a :meth:`save`
        checkpoint; a ``ValueError`` when it was written for another ``model_config``."""
        state, saved_config, meta = load_checkpoint(path)
        require_same_config(path, saved_config, self.model_config)
        model_state = {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}
        unwrap(self.model).load_state_dict(model_state)
        if self.ema is not None:
            ema_state = {k[len("ema/"):]: v for k, v in state.items() if k.startswith("ema/")}
            updates = meta.get("ema_updates")
            self.ema.load_state_dict(ema_state or model_state, int(meta["step"]) if updates is None else updates)
        opt_tensors = {k: v for k, v in state.items() if k.startswith("optim/")}
        self.optimizer.load_state_dict(unflatten_optimizer(opt_tensors, meta["optimizer"]))
        if "rng/torch" in state:
            torch.set_rng_state(state["rng/torch"])
        if "rng/cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng/cuda"], self.device)
        self.step = int(meta["step"])
        self.history = list(meta.get("history", []))
        if self.config.minutes is not None:  # the prediction of the run's first part (None: calibrate)
            self.total_steps = meta.get("predicted_steps")
        self.elapsed_s = float(meta.get("elapsed_s", 0.0))
        if "window" in meta:
            self.window.load_state_dict(meta["window"])
        if Path(path) == self.ckpt_path:
            self.saved_step = self.step
