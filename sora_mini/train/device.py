"""Where training runs: autocast for a device, batches moved to it, the model inside a wrapper.

One device per process (CPU, CUDA or Apple MPS; several processes: see ``distributed``). bf16
autocast exists on CPU and CUDA; on other devices training runs in fp32 without an error.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

PRECISIONS = ("bf16", "fp32")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or ``torch.compile``) wrapper; the model itself otherwise."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


def autocast_for(device: str | torch.device, precision: str = "bf16"):
    """The autocast context of ``precision`` on ``device``: bf16 autocast on CPU and CUDA; on any
    other device (e.g. Apple MPS) and for ``"fp32"``, no autocast (fp32), never an error."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    device = torch.device(device)
    if precision == "bf16" and device.type in ("cpu", "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def move_to(batch, device: str | torch.device):
    """``batch`` with every tensor on ``device``: a tensor, or dicts / lists / tuples of them, nested
    (anything else is returned as is)."""
    if torch.is_tensor(batch):
        return batch.to(device)
    if isinstance(batch, dict):
        return type(batch)((k, move_to(v, device)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch
