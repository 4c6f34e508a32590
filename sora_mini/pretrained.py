"""One way to build, save and load every trained part: a frozen config dataclass, ``Model(config)``,
``model.save_pretrained(dir)`` and ``Model.from_pretrained(dir, device=...)``.

A saved part is a folder of two files, each written atomically (temporary file + rename), the
config last, so a folder whose ``config.json`` exists holds a complete model:

    config.json          {"class": "VideoDiT", "format_version": 1, "config": {...every field...}}
    model.safetensors    the state dict (no pickles: loading never runs code)

Loading is strict: another class, another format version, an unknown or a missing config key,
or weights of another name or shape is an error that names what differs. Training state
(optimizer, step, RNG) never goes here: it lives in the trainer's own checkpoint.

(``huggingface_hub.PyTorchModelHubMixin`` saves the same two files, but writes them in place,
takes config keys it does not know silently and records no class or format version; this module
is the same convention with those three guarantees.)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sora_mini.checkpoint import atomic_write

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


# ----------------------------------------------------------------------------------------------
# Config dataclasses <-> JSON
# ----------------------------------------------------------------------------------------------
def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)  # a nested config section
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def config_to_dict(config) -> dict:
    """A config dataclass -> a JSON-able dict (tuples become lists)."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"a config must be a dataclass instance, got {type(config).__name__}")
    return {f.name: _jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}


def _as_tuples(value):
    return tuple(_as_tuples(v) for v in value) if isinstance(value, list) else value


def config_from_dict(cls, data: dict, source: str = "config"):
    """``cls(**data)`` strictly: an unknown or missing key is a ``ValueError`` naming it.

    JSON lists come back as tuples (configs are frozen and hashable).
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{source}: unknown {cls.__name__} field(s) {', '.join(unknown)}; it was "
                         f"written by another version or for another class (known: {', '.join(fields)})")
    missing = sorted(n for n in set(fields) - set(data) if not fields[n].metadata.get("hash_if_set"))
    if missing:
        raise ValueError(f"{source}: {cls.__name__} field(s) {', '.join(missing)} missing; save the "
                         "model again with save_pretrained, or add the field(s) to the JSON")
    return cls(**{name: _as_tuples(value) for name, value in data.items()})


HASH_IF_SET = {"hash_if_set": True}  # field metadata: see config_hash (and config_from_dict: None when absent)


def _hashed_fields(config) -> dict:
    """``config_to_dict(config)`` without its unset HASH_IF_SET fields, nested configs alike."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.metadata.get("hash_if_set") and value is None:
            continue
        out[f.name] = _hashed_fields(value) if dataclasses.is_dataclass(value) else _jsonable(value)
    return out


def config_hash(config, length: int = 8) -> str:
    """A short stable hash of every field of a config (the cache key of get-or-train helpers).

    A field declared with ``field(default=None, metadata=HASH_IF_SET)`` (one added after folders
    were trained under the old fields) is hashed only when it is not None, so those folders keep
    their names; in nested configs too."""
    text = json.dumps({"class": type(config).__name__, **_hashed_fields(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ----------------------------------------------------------------------------------------------
# The convention
# ----------------------------------------------------------------------------------------------
def is_pretrained_dir(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds a saved part (both files)."""
    d = Path(directory)
    return (d / CONFIG_NAME).is_file() and (d / WEIGHTS_NAME).is_file()


def read_config_file(directory: str | os.PathLike) -> dict:
    """The parsed ``config.json`` of a saved part (class, format version, config)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG_NAME} in {directory}: not a saved model folder "
                                "(save one with model.save_pretrained(folder))")
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is damaged: save the model again") from e
    for key in ("class", "format_version", "config"):
        if key not in payload:
            raise ValueError(f"{path} has no {key!r} entry: it was not written by save_pretrained")
    return payload


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` built as ``Model(config)``.

    A subclass sets ``config_class`` (a frozen dataclass) and keeps the instance in ``self.config``.
    """

    config_class: type = None  # set by each model class

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically each)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        # safetensors refuses shared or non-contiguous storage: store plain contiguous copies
        tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in self.state_dict().items()}
        payload = {"class": type(self).__name__, "format_version": FORMAT_VERSION,
                   "config": config_to_dict(self.config)}
        atomic_write(directory / WEIGHTS_NAME, lambda tmp: save_file(tensors, tmp))
        atomic_write(directory / CONFIG_NAME, lambda tmp: Path(tmp).write_text(json.dumps(payload, indent=2)))
        return directory

    @classmethod
    def config_from_pretrained(cls, directory: str | os.PathLike):
        """The config stored in ``directory``, checked against this class (strict)."""
        payload = read_config_file(directory)
        if payload["class"] != cls.__name__:
            raise ValueError(f"{directory} holds a {payload['class']}, not a {cls.__name__}; load it with "
                             f"{payload['class']}.from_pretrained")
        if payload["format_version"] != FORMAT_VERSION:
            raise ValueError(f"{directory} has format version {payload['format_version']}; this sora_mini "
                             f"reads version {FORMAT_VERSION}: save it again with this version")
        return config_from_dict(cls.config_class, payload["config"], source=str(Path(directory) / CONFIG_NAME))

    @classmethod
    def build_from_pretrained(cls, config, directory: Path):
        """``cls(config)``; a part that saves more than weights (a tokenizer) overrides this."""
        return cls(config)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, *, device: str | torch.device = "cpu"):
        """Build the part from ``directory`` and load its weights strictly; eval mode."""
        config = cls.config_from_pretrained(directory)
        state = read_weights(directory)
        model = cls.build_from_pretrained(config, Path(directory))
        if hasattr(model, "prepare_state"):  # a part with optional state (buffers set after training began)
            model.prepare_state(state)
        load_state_strict(model, state, str(Path(directory) / WEIGHTS_NAME))
        return model.to(device).eval()


def read_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict in ``directory/model.safetensors``; clear errors when missing or damaged."""
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{directory} has no {WEIGHTS_NAME}; save the model again with save_pretrained")
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights} cannot be read ({e}): the file is truncated or damaged") from e


def load_state_strict(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "weights") -> None:
    """``model.load_state_dict(state)`` with errors that name the missing, unexpected or
    mis-shaped tensors (and their shapes)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} (the model has {tuple(own[k].shape)})"
              for k in own if k in state and state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected[:5])}" + (" ..." if len(unexpected) > 5 else ""))
    if shapes:
        problems.append("other shapes: " + "; ".join(shapes[:5]))
    if problems:
        raise ValueError(f"{source} does not fit {type(model).__name__}: {' | '.join(problems)}; were "
                         "they saved from a model of another config?")
    model.load_state_dict(state, strict=True)
