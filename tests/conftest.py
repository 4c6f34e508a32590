"""Shared test set-up: a non-interactive matplotlib backend and a fixed seed per test."""

import os

os.environ.setdefault("MPLBACKEND", "agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def tiny_run_root(tmp_path_factory):
    """A run root with the tiny 3D KL autoencoder in it (copied from runs/tiny when it is there,
    else trained, about 20 s): what the text-to-video tests train on."""
    import shutil
    from pathlib import Path

    from sora_mini.artifacts.autoencoder import autoencoder_dir, get_autoencoder

    root = tmp_path_factory.mktemp("runs")
    here = autoencoder_dir("tiny", kind="3d_kl", run_root=Path(__file__).parents[1] / "runs")
    if (here / "training.json").is_file():
        shutil.copytree(here, autoencoder_dir("tiny", kind="3d_kl", run_root=root))
    else:
        get_autoencoder("tiny", kind="3d_kl", run_root=root, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tiny_run_root):
    """The tiny text-to-video pipeline, trained once for the session (about 10 s)."""
    from sora_mini.pipeline import train_pipeline

    return train_pipeline("tiny", run_root=tiny_run_root, progress=False)
