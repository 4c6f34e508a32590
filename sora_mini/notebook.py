"""Notebook helpers: the set-up cell every notebook runs, and inline shape checks (as d2l's check_shape)."""

from __future__ import annotations

import warnings
from pathlib import Path


def setup(SCALE: str = "tiny", SEED: int = 0, DEVICE: str = "auto", RUN_DIR: str = "runs"):
    """Check the parameters cell, seed everything, pick the device; return ``(cfg, device, run)``.

    ``run`` is the absolute folder ``RUN_DIR/<scale>/`` where this scale's artifacts live; a relative
    ``RUN_DIR`` is taken from the workbook's root (see ``sora_mini.paths``), not the kernel's folder.
    """
    import torch

    import sora_mini
    from sora_mini.config import SCALES, get_config, resolve_device, seed_everything
    from sora_mini.paths import run_dir, workbook_root

    if SCALE not in SCALES:
        raise ValueError(f"SCALE={SCALE!r} is not a scale; use one of {SCALES}")
    if not isinstance(SEED, int) or SEED < 0:
        raise ValueError(f"SEED={SEED!r} must be a non-negative integer")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    cfg = get_config(SCALE)
    device = resolve_device(DEVICE)
    seed_everything(SEED)
    run = run_dir(RUN_DIR, SCALE, base=workbook_root())
    print(f"sora_mini {sora_mini.__version__} | scale={SCALE} ({cfg.description}) | seed={SEED} | "
          f"device={device} | torch {torch.__version__} | threads={torch.get_num_threads()} | run dir={_short(run)}")
    return cfg, device, run


def _short(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_shape(tensor, shape) -> None:
    """Assert ``tensor.shape == shape`` with a message a learner can read (``None`` matches any size)."""
    got = tuple(tensor.shape)
    want = tuple(shape)
    ok = len(got) == len(want) and all(w is None or g == w for g, w in zip(got, want))
    if not ok:
        raise AssertionError(f"shape {got} but expected {want}")
