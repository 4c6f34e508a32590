"""Where training runs: autocast for a device, batches moved to it, the model inside a wrapper.

One device per process (CPU, CUDA or Apple MPS; several processes: see ``distributed``).

Precision: ``"bf16"`` is bf16 autocast where the device multiplies bf16 matrices in hardware (a
CUDA GPU that supports bf16; a CPU with AVX512-BF16 or AMX) and fp32 everywhere else (what ran is
recorded: ``Trainer.precision``, a training's ``training.json``, a pipeline call's ``info``). A CPU
without those instructions emulates bf16 matmuls: measured on a 2-core AMD EPYC (AVX2 only), a
[288, 256] x [256, 1024] product ran at 12.6 GFLOP/s in bf16 against 133 GFLOP/s in fp32, and a training step of the ``small`` text-to-video recipe took 73.9 s in bf16
against 3.1 s in fp32. ``"bf16-always"`` insists on bf16 autocast (CPU and CUDA) whatever it costs;
``"fp32"`` never autocasts. MPS and other devices run fp32.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("bf16", "fp32", "bf16-always")


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a DDP (or ``torch.compile``) wrapper; the model itself otherwise."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or model._orig_mod
    return model


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True when this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX, which oneDNN uses)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    found = [getattr(torch.cpu, name, None) for name in checks]
    if all(f is not None for f in found):
        return any(bool(f()) for f in found)
    cpuinfo = Path("/proc/cpuinfo")  # an older torch: the kernel's flags (Linux), else assume not
    flags = cpuinfo.read_text().split() if cpuinfo.is_file() else []
    return "avx512_bf16" in flags or "amx_bf16" in flags


def native_bf16(device: str | torch.device) -> bool:
    """True when ``device`` computes bf16 matmuls natively (so bf16 autocast is a speed-up there)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {PRECISIONS}")
    return precision


def resolve_precision(device: str | torch.device, precision: str = "bf16") -> str:
    """What ``precision`` runs as on ``device``: ``"bf16"`` or ``"fp32"`` (see the module docstring)."""
    check_precision(precision)
    device = torch.device(device)
    if precision == "fp32" or device.type not in ("cpu", "cuda"):
        return "fp32"
    return "bf16" if precision == "bf16-always" or native_bf16(device) else "fp32"


def autocast_for(device: str | torch.device, precision: str = "bf16"):
    """The autocast context of ``precision`` on ``device`` (:func:`resolve_precision`): bf16
    autocast where it runs natively, or where ``"bf16-always"`` insists; otherwise no autocast
    (fp32), never an error."""
    device = torch.device(device)
    if resolve_precision(device, precision) == "bf16":
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
