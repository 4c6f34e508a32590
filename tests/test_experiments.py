"""The experiment scripts under experiments/ run end to end at tiny scale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compression_flicker_trains_measures_then_loads(tmp_path):
    torch.set_num_threads(1)
    study = load("compression_flicker")
    first = study.run("tiny", "3d_kl", 3, {"temporal_upsample": "depth_to_time"}, 3, tmp_path)
    assert first["steps"] == 3 and first["overrides"] == {"temporal_upsample": "depth_to_time"}
    noise = first["latent_noise"]
    assert [n["sigma"] for n in noise] == list(study.SIGMAS)
    assert noise[0]["flicker"] == pytest.approx(first["flicker"])  # sigma 0 is the reconstruction
    assert 0 <= first["flicker_static_share"] <= 1
    (run_dir,) = (tmp_path / "tiny").iterdir()
    assert (run_dir / "figures.json").exists() and "depth_to_time" in run_dir.name
    again = study.run("tiny", "3d_kl", 3, {"temporal_upsample": "depth_to_time"}, 3, tmp_path)
    assert again["train_seconds"] == first["train_seconds"]  # loaded, not trained again
    assert again["psnr"] == first["psnr"]
