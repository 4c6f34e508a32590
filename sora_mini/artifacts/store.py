"""The store of trained parts: one folder per part under ``<run_root>/<scale>/``, named by what it
is and a hash of its whole config, holding the saved part, how it was trained and the trainer.

    config.json, model.safetensors    the part (``save_pretrained``; load with ``from_pretrained``)
    training.json                     how it was trained and what it measured (``training_info``)
    trainer.safetensors, trainer.json the trainer's resumable state (an interrupted run resumes)
    log.jsonl                         the training log (``training_log``)

A folder is complete once ``training.json`` exists (it is written last, atomically).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from sora_mini.checkpoint import atomic_write
from sora_mini.paths import run_dir as resolve_run_dir
from sora_mini.pretrained import config_hash, is_pretrained_dir

TRAINING_NAME = "training.json"
TRAINER_NAME = "trainer"  # the trainer's checkpoint stem: trainer.safetensors + trainer.json
LOG_NAME = "log.jsonl"


# ----------------------------------------------------------------------------------------------
# Part folders: naming, completeness, training record
# ----------------------------------------------------------------------------------------------
def part_key(*configs) -> str:
    """One short hash over every field of every config (``pretrained.config_hash`` of each)."""
    full = "-".join(config_hash(c, length=64) for c in configs)
    return hashlib.sha256(full.encode()).hexdigest()[:8]


def part_dir(run_root: str | os.PathLike, scale: str, name: str, *configs) -> Path:
    """``<run_root>/<scale>/<name>-<part_key(configs)>`` (not created)."""
    return resolve_run_dir(run_root, scale, create=False) / f"{name}-{part_key(*configs)}"


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a finished part: the saved model and its ``training.json``."""
    folder = Path(folder)
    return is_pretrained_dir(folder) and (folder / TRAINING_NAME).is_file()


def write_training_info(folder: str | os.PathLike, info: dict) -> Path:
    """Write ``folder/training.json`` atomically (JSON of numbers, strings, lists and dicts)."""
    path = Path(folder) / TRAINING_NAME
    text = json.dumps(info, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def training_info(folder: str | os.PathLike) -> dict:
    """How the part in ``folder`` was trained: scale, kind, steps, seed, seconds, its settings and
    final metrics (``training.json``)."""
    path = Path(folder) / TRAINING_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {TRAINING_NAME} in {folder}: the part was never trained there, or its "
                                "training did not finish (call its get_<part>(...) helper to finish it)")
    return json.loads(path.read_text())


def training_log(folder: str | os.PathLike) -> list[dict]:
    """The rows of ``folder/log.jsonl`` in step order (a step logged twice, by a run that was
    interrupted and resumed, keeps its last row)."""
    path = Path(folder) / LOG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {LOG_NAME} in {folder}: nothing was trained there")
    rows = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["step"]] = row
    return [rows[s] for s in sorted(rows)]


def clear_part(folder: str | os.PathLike) -> None:
    """Remove a part folder's model, record, trainer state and log (``retrain=True``)."""
    folder = Path(folder)
    if folder.is_dir():
        shutil.rmtree(folder)


