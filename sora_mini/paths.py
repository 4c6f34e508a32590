"""Where things live on disk: the project root, the run directory of a scale.

Notebooks run from ``notebooks/`` under nbval and from wherever papermill was called, so every
path a notebook writes goes through :func:`run_dir`, which never depends on the working directory.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout that holds ``pyproject.toml`` next to the package, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def run_dir(run_dir: str | os.PathLike = "runs", scale: str | None = None, create: bool = True) -> Path:
    """Resolve ``RUN_DIR`` (relative paths are taken from the project root) and the scale's folder."""
    path = Path(run_dir).expanduser()
    if not path.is_absolute():
        path = project_root() / path
    if scale is not None:
        path = path / scale
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
