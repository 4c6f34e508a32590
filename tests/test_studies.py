"""The studies (sora_mini.studies) run end to end at tiny scale."""

from __future__ import annotations

import pytest
import torch

from sora_mini.convert import model_to_images
from sora_mini.studies import compression_flicker
from sora_mini.studies import toy_diffusion as toy


def test_compression_flicker_trains_measures_then_loads(tmp_path):
    torch.set_num_threads(1)
    study = compression_flicker
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


def test_colour_adherence_reads_real_world_images():
    x, y = toy.world_images(16, 16)
    images = model_to_images(x)
    right = toy.colour_adherence(images, y)
    wrong = toy.colour_adherence(images, (y + 1) % len(toy.COLOURS))
    assert right["adherence"] == right["colour_match"] == 1.0
    assert wrong["adherence"] == wrong["colour_match"] == 0.0
