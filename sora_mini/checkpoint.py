"""Checkpoints: a ``safetensors`` file of tensors plus a JSON file of config and metadata.

Both files are written atomically (a temporary file in the same folder, then ``os.replace``), the
JSON last, so a checkpoint whose JSON exists is complete: a crash mid-save never leaves a
half-written checkpoint that looks valid. No pickles: loading never runs code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def _paths(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix in (".safetensors", ".json"):
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def atomic_write(target: Path, write) -> None:
    """Write ``target`` through ``write(tmp_path)`` into a temporary file of the same folder, then
    rename it over ``target``: a crash mid-write never leaves a half-written file in its place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; a checkpoint is shared like any output
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(path, state_dict: dict[str, torch.Tensor], config: dict, extra: dict | None = None) -> Path:
    """Write ``path.safetensors`` (tensors) and ``path.json`` (``{"config": ..., "extra": ...}``)."""
    weights, meta = _paths(path)
    # safetensors refuses shared or non-contiguous storage: store plain contiguous copies
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()}
    atomic_write(weights, lambda tmp: save_file(tensors, tmp))
    payload = json.dumps({"config": config, "extra": extra or {}}, indent=2, default=_jsonable)
    atomic_write(meta, lambda tmp: Path(tmp).write_text(payload))
    return weights


def _jsonable(obj):
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable; store it as a number, string or list")


def checkpoint_exists(path) -> bool:
    weights, meta = _paths(path)
    return weights.exists() and meta.exists()


def load_checkpoint(path, device: str | torch.device = "cpu") -> tuple[dict, dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint` -> ``(state_dict, config, extra)``."""
    weights, meta = _paths(path)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no checkpoint at {weights.with_suffix('')} "
                                f"(expected {weights.name} and {meta.name}); train it first")
    try:
        payload = json.loads(meta.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"checkpoint metadata {meta} is not valid JSON: {e}") from e
    state = load_file(str(weights), device=str(device))
    return state, payload.get("config", {}), payload.get("extra", {})
