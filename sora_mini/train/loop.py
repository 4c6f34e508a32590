"""The shared training loop: AdamW, bf16 autocast, gradient clipping, EMA, progress, JSONL log,
atomic checkpoints and exact resume, on one device. Every model of the workbook trains through
:class:`Trainer`.

What the caller brings: a ``model``; ``loss_fn(model, batch) -> (loss, metrics)``, a scalar
tensor and a dict of floats to log; and ``data``, either ``data(step) -> batch`` (deterministic in
``step``, so a resumed run sees the same batches as an uninterrupted one) or any iterable of batches
(cycled). A batch is a tensor or a dict / list / tuple of them (nested); the trainer moves it to
its device. The loop follows nanoGPT's ``train.py``: warmup then cosine learning rate, clip, step.
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
from typing import Any

import torch
from torch import nn

from sora_mini.checkpoint import checkpoint_exists, load_checkpoint, save_checkpoint
from sora_mini.train.device import PRECISIONS, autocast_for, is_main_process, move_to, unwrap
from sora_mini.train.ema import EMA

__all__ = ["EMA", "PRECISIONS", "Trainer", "TrainerConfig", "autocast_for", "lr_factor", "move_to"]


@dataclass(frozen=True)
class TrainerConfig:
    """How to train (not what): steps, optimiser, schedule, precision, logging, checkpoints."""

    steps: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = 0
    lr_schedule: str = "cosine"  # "cosine" (to min_lr_ratio * lr) or "constant", after warmup
    min_lr_ratio: float = 0.1
    grad_clip: float | None = 1.0  # max global grad norm; None to skip
    precision: str = "bf16"  # "bf16": bf16 autocast (about 2.5x faster on this CPU); "fp32"
    ema_decay: float | None = None  # keep an exponential moving average of the weights
    ema_warmup: bool = True  # EMA decay min(ema_decay, (1 + n) / (10 + n)) at update n (see EMA)
    log_every: int = 10
    ckpt_every: int = 0  # also save every n steps (0: only at the end)
    progress: bool = True
    desc: str = "train"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; choose one of {PRECISIONS}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; use 'cosine' or 'constant'")
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")


def lr_factor(step: int, cfg: TrainerConfig) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based): linear warmup, then cosine."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "constant" or cfg.steps <= cfg.warmup_steps:
        return 1.0
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ----------------------------------------------------------------------------------------------
# Optimizer state <-> flat tensors (safetensors holds tensors only; the rest goes to JSON)
# ----------------------------------------------------------------------------------------------
def _flatten_optimizer(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, val in state.items():
            if torch.is_tensor(val):
                tensors[f"optim/{idx}/{key}"] = val
            else:
                scalars[f"{idx}/{key}"] = val
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, val in tensors.items():
        _, idx, key = name.split("/", 2)
        state.setdefault(int(idx), {})[key] = val
    for name, val in meta.get("scalars", {}).items():
        idx, key = name.split("/", 1)
        state.setdefault(int(idx), {})[key] = val
    return {"state": state, "param_groups": meta["param_groups"]}


# ----------------------------------------------------------------------------------------------
class Trainer:
    """Run ``config.steps`` optimiser steps of ``loss_fn(model, next batch)`` on ``device``.

    The model is moved to ``device`` here and every batch before ``loss_fn`` sees it (see
    :func:`move_to`); autocast follows the device (:func:`autocast_for`).
    ``ckpt_path``: where :meth:`save` writes the full training state (model, optimizer, EMA,
    step, RNG) as ``.safetensors`` + ``.json``; :meth:`fit` resumes from it when it exists.
    ``log_path``: a JSONL file, one line per ``log_every`` steps (step, loss, lr, metrics, time).
    ``callbacks``: ``fn(trainer, step, metrics)`` after every step (evaluation, early stop by
    setting ``trainer.stop = True``). ``model_config`` is stored with checkpoints.
    :meth:`eval_model` is the model to evaluate, sample from or save: the EMA weights when
    ``config.ema_decay`` is set.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, data, config: TrainerConfig, *,
                 device: str | torch.device = "cpu", ckpt_path=None, log_path=None,
                 model_config: dict | None = None, callbacks=(), optimizer=None):
        self.device = torch.device(device)
        self.model, self.loss_fn, self.data, self.config = model.to(self.device), loss_fn, data, config
        self.ckpt_path = Path(ckpt_path) if ckpt_path is not None else None
        self.log_path = Path(log_path) if log_path is not None else None
        self.model_config = model_config or {}
        self.callbacks = list(callbacks)
        self.optimizer = optimizer or self._adamw(model)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.ema = EMA(model, config.ema_decay, config.ema_warmup) if config.ema_decay is not None else None
        self.step = 0
        self.stop = False
        self.history: list[dict] = []
        self._iter = None

    def _adamw(self, model: nn.Module) -> torch.optim.Optimizer:
        """AdamW; biases, norms and 1-D parameters get no weight decay (as in nanoGPT)."""
        params = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": self.config.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW([g for g in groups if g["params"]], lr=self.config.lr,
                                 betas=self.config.betas)

    # ------------------------------------------------------------------------------------------
    def autocast(self):
        """The autocast context of the config's precision on this trainer's device."""
        return autocast_for(self.device, self.config.precision)

    def next_batch(self):
        """The batch of the current step, on the trainer's device."""
        if callable(self.data) and not hasattr(self.data, "__iter__"):
            return move_to(self.data(self.step), self.device)
        if self._iter is None:
            self._iter = iter(self.data)
        try:
            batch = next(self._iter)
        except StopIteration:  # an epoch ended: start the next one
            self._iter = iter(self.data)
            batch = next(self._iter)
        return move_to(batch, self.device)

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
        """One optimiser step on ``batch``; returns the logged figures."""
        cfg = self.config
        self.model.train()
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = base * lr_factor(self.step, cfg)
        with self.autocast():
            loss, metrics = self.loss_fn(self.model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step}; lower the learning "
                                     "rate or try precision='fp32'")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = None
        if cfg.grad_clip is not None:
            grad_norm = float(nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip))
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        out = {"loss": float(loss.detach()), **{k: float(v) for k, v in metrics.items()},
               "lr": self.optimizer.param_groups[0]["lr"]}
        if grad_norm is not None:
            out["grad_norm"] = grad_norm
        return out

    def fit(self) -> list[dict]:
        """Train to ``config.steps`` (resuming from ``ckpt_path`` if it holds a checkpoint)."""
        from tqdm.auto import tqdm

        cfg = self.config
        if self.ckpt_path is not None and checkpoint_exists(self.ckpt_path):
            self.load(self.ckpt_path)
        main = is_main_process()
        bar = tqdm(total=cfg.steps, initial=self.step, desc=cfg.desc,
                   disable=not (cfg.progress and main), leave=False)
        window: list[dict] = []
        t0 = time.perf_counter()
        while self.step < cfg.steps and not self.stop:
            metrics = self.train_step(self.next_batch())
            self.step += 1
            window.append(metrics)
            for cb in self.callbacks:
                cb(self, self.step, metrics)
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.steps or self.stop:
                row = {"step": self.step, **{k: sum(m[k] for m in window if k in m) /
                                             sum(k in m for m in window) for k in window[-1]},
                       "elapsed_s": round(time.perf_counter() - t0, 3)}
                self.history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4g}")
                if main:
                    self._log(row)
                window = []
            if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.ckpt_path is not None:
                self.save()
        bar.close()
        if self.ckpt_path is not None:
            self.save()
        return self.history

    def _log(self, row: dict) -> None:
        if self.log_path is None:
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
        opt_tensors, opt_meta = _flatten_optimizer(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng/torch"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(self.device)
        meta = {"step": self.step, "optimizer": opt_meta, "history": self.history,
                "trainer": dataclasses.asdict(self.config),
                "ema_updates": self.ema.num_updates if self.ema is not None else None}
        return tensors, meta

    def save(self, path=None) -> Path | None:
        """Write the training state atomically (from the main process only, when there are several)."""
        path = Path(path) if path is not None else self.ckpt_path
        if path is None or not is_main_process():
            return None
        tensors, meta = self.state_tensors()
        return save_checkpoint(path, tensors, self.model_config, meta)

    def load(self, path) -> None:
        """Restore model, optimizer, EMA, step and RNG from a :meth:`save` checkpoint."""
        state, _, meta = load_checkpoint(path)
        model_state = {k[len("model/"):]: v for k, v in state.items() if k.startswith("model/")}
        unwrap(self.model).load_state_dict(model_state)
        if self.ema is not None:
            ema_state = {k[len("ema/"):]: v for k, v in state.items() if k.startswith("ema/")}
            updates = meta.get("ema_updates")
            self.ema.load_state_dict(ema_state or model_state, int(meta["step"]) if updates is None else updates)
        opt_tensors = {k: v for k, v in state.items() if k.startswith("optim/")}
        self.optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, meta["optimizer"]))
        if "rng/torch" in state:
            torch.set_rng_state(state["rng/torch"])
        if "rng/cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng/cuda"], self.device)
        self.step = int(meta["step"])
        self.history = list(meta.get("history", []))

