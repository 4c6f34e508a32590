"""Where things live on disk: the run folder of a scale, the workbook's folders.

One rule for a relative path: it is taken from the **current working directory**, as everywhere in
Python (``run_dir("runs", "small")`` from ``~/work`` is ``~/work/runs/small``). The one place that
changes the base is a notebook: Jupyter, nbval and papermill start a kernel inside ``notebooks/``,
so :func:`sora_mini.notebook.setup` takes a relative ``RUN_DIR`` from the workbook's root (the
folder that holds ``notebooks/``), and ``runs/`` is the same folder however a notebook was started.
Absolute paths are used as they are.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The source checkout that holds ``pyproject.toml`` next to the package, else the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def workbook_root(cwd: str | os.PathLike | None = None) -> Path:
    """The folder a notebook's relative ``RUN_DIR`` is taken from: the parent of ``notebooks/`` when the
    kernel runs in a workbook's ``notebooks/`` folder, else the working directory itself."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    if cwd.name == "notebooks" and any(cwd.glob("[0-9][0-9]_*.ipynb")):
        return cwd.parent
    return cwd


def run_dir(root: str | os.PathLike = "runs", scale: str | None = None, *, create: bool = True,
            base: str | os.PathLike | None = None) -> Path:
    """The absolute folder ``root/<scale>/`` (``root`` alone without a scale).

    A relative ``root`` is taken from ``base`` (default: the working directory).
    """
    path = Path(root).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() if base is None else Path(base)) / path
    if scale is not None:
        path = path / scale
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def notebooks_dir() -> Path:
    return project_root() / "notebooks"
