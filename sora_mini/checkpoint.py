"""Checkpoints: a ``safetensors`` file of tensors plus a JSON file of config and metadata.

Both files are written atomically (a temporary file in the same folder, then ``os.replace``). The
JSON payload is also stored in the safetensors header, and loading reads it from there: tensors and
metadata always come from the same save, even when a process is killed between the two renames
(the JSON beside it is then one save older; it is the readable copy, and the one older
checkpoints without the header copy are read from). A checkpoint exists once both files do, so a
run killed during its first save starts over. No pickles: loading never runs code.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

_HEADER_KEY = "sora_mini"  # the safetensors metadata entry holding the JSON payload
_UNSET = object()


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
    payload = json.dumps({"config": config, "extra": extra or {}}, indent=2, default=_jsonable)
    atomic_write(weights, lambda tmp: save_file(tensors, tmp, metadata={_HEADER_KEY: payload}))
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
    """Read a checkpoint written by :func:`save_checkpoint` -> ``(state_dict, config, extra)``.

    A truncated or corrupted file raises a ``ValueError`` that names it."""
    weights, meta = _paths(path)
    if not checkpoint_exists(path):
        raise FileNotFoundError(f"no checkpoint at {weights.with_suffix('')} "
                                f"(expected {weights.name} and {meta.name}); train it first")
    unreadable = f"delete {weights} and {meta} to start over, or put back a good copy"
    try:
        with safe_open(str(weights), framework="pt", device=str(device)) as f:
            names = f.keys()  # a safetensors file handle, not a dict
            state = {k: f.get_tensor(k) for k in names}
            payload_text = (f.metadata() or {}).get(_HEADER_KEY)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"checkpoint weights {weights} are unreadable, truncated or corrupted ({e}); "
                         f"{unreadable}") from e
    source = weights if payload_text is not None else meta
    try:
        payload = json.loads(payload_text if payload_text is not None else meta.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"checkpoint metadata in {source} is not valid JSON ({e}); {unreadable}") from e
    return state, payload.get("config", {}), payload.get("extra", {})


def require_same_config(path, saved: dict, current: dict) -> None:
    """Raise a ``ValueError`` naming every field where the config a checkpoint at ``path`` was
    written with (``saved``) differs from this run's (``current``); compared as JSON (tuples as
    lists), nested dicts field by field."""
    diffs = _differences(_as_json(saved), _as_json(current))
    if not diffs:
        return
    weights, meta = _paths(path)
    was = ", ".join(f"{k}={a}" for k, a, _ in diffs)
    now = ", ".join(f"{k}={b}" for k, _, b in diffs)
    raise ValueError(f"checkpoint at {weights.with_suffix('')} was written for {was}; this run has {now}. "
                     f"Delete {weights.name} and {meta.name} to start over, or give this run another "
                     "checkpoint path")


def _differences(saved: dict, current: dict, prefix: str = "") -> list[tuple[str, str, str]]:
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, _UNSET), current.get(key, _UNSET)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((prefix + key, "(unset)" if a is _UNSET else repr(a), "(unset)" if b is _UNSET else repr(b)))
    return out


def _as_json(config: dict) -> dict:
    return json.loads(json.dumps(config, default=_jsonable))
