"""SoraMiniPipeline: trained at tiny, same seed same video, save/load, sizes it cannot make."""

import json

import numpy as np
import pytest
import torch

from sora_mini.pipeline import (
    PIPELINE_NAME,
    SoraMiniPipeline,
    get_pipeline,
    resolve_pipeline_dir,
    train_pipeline,
    trained_dir,
)


def test_trains_into_its_folder_and_loads_by_scale(tiny_pipeline_dir, tiny_run_root):
    assert tiny_pipeline_dir == trained_dir("tiny", run_root=tiny_run_root)
    index = json.loads((tiny_pipeline_dir / PIPELINE_NAME).read_text())
    assert index["components"] == {"transformer": "VideoDiT", "vae": "VideoAutoencoder", "text_encoder": "FrozenMiniLM"}
    assert (tiny_pipeline_dir / "training.json").is_file() and (tiny_pipeline_dir / "log.jsonl").is_file()
    assert resolve_pipeline_dir("tiny", run_root=tiny_run_root) == tiny_pipeline_dir
    pipe = get_pipeline("tiny", run_root=tiny_run_root, progress=False)  # no second training
    assert isinstance(pipe, SoraMiniPipeline)


def test_same_seed_same_video_and_sizes(tiny_pipeline_dir):
    pipe = SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)
    a = pipe("a red circle moves right", height=32, width=48, num_frames=5, num_inference_steps=3, seed=1)
    b = pipe("a red circle moves right", height=32, width=48, num_frames=5, num_inference_steps=3, seed=1)
    c = pipe("a red circle moves right", height=32, width=48, num_frames=5, num_inference_steps=3, seed=2)
    assert a.video.shape == (5, 32, 48, 3) and a.video.dtype == np.uint8
    assert np.array_equal(a.video, b.video) and not np.array_equal(a.video, c.video)
    assert a.info["used_prompts"][0].startswith("a ") and a.info["seed"] == 1
    image = pipe(["a blue square", "a green triangle falls"], num_frames=1, num_inference_steps=2, seed=0)
    assert image.videos.shape == (2, 1, 32, 32, 3)
    assert image.latents.shape[0] == 2


def test_sizes_it_cannot_make_name_the_nearest(tiny_pipeline_dir):
    pipe = SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)
    with pytest.raises(ValueError, match="height 30 .* nearest: 24, 32"):
        pipe("a red circle", height=30)
    with pytest.raises(ValueError, match="num_frames 8 .* nearest: 5, 9"):
        pipe("a red circle", num_frames=8)
    with pytest.raises(ValueError, match="empty"):
        pipe("")


def test_save_and_load_round_trip(tiny_pipeline_dir, tmp_path):
    pipe = SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)
    pipe.save_pretrained(tmp_path / "copy")
    again = SoraMiniPipeline.from_pretrained(tmp_path / "copy")
    for p, q in zip(pipe.transformer.state_dict().values(), again.transformer.state_dict().values()):
        assert torch.equal(p, q)
    kw = {"num_frames": 5, "num_inference_steps": 2, "seed": 3}
    assert np.array_equal(pipe("a red circle", **kw).video, again("a red circle", **kw).video)


def test_missing_or_foreign_folders_are_clear_errors(tmp_path, tiny_pipeline_dir, monkeypatch):
    with pytest.raises(FileNotFoundError, match="holds no pipeline"):
        SoraMiniPipeline.from_pretrained(tmp_path)
    from sora_mini import pipeline

    monkeypatch.setattr(pipeline, "shipped_dir", lambda scale: tmp_path / "none")
    with pytest.raises(FileNotFoundError, match="sora-mini train --scale tiny"):
        SoraMiniPipeline.from_pretrained("tiny", run_root=tmp_path)
    monkeypatch.setattr(pipeline, "shipped_dir", lambda scale: tiny_pipeline_dir)
    assert resolve_pipeline_dir("tiny", run_root=tmp_path) == tiny_pipeline_dir  # falls back to the shipped one
    bad = tmp_path / "bad"
    SoraMiniPipeline.from_pretrained(tiny_pipeline_dir).save_pretrained(bad)
    index = json.loads((bad / PIPELINE_NAME).read_text())
    (bad / PIPELINE_NAME).write_text(json.dumps({**index, "format_version": 99}))
    with pytest.raises(ValueError, match="format 99"):
        SoraMiniPipeline.from_pretrained(bad)


def test_training_twice_gives_identical_weights(tiny_run_root, tmp_path):
    import shutil

    from sora_mini.artifacts.autoencoder import autoencoder_dir

    folders = []
    for name in ("a", "b"):
        root = tmp_path / name
        shutil.copytree(autoencoder_dir("tiny", kind="3d_kl", run_root=tiny_run_root),
                        autoencoder_dir("tiny", kind="3d_kl", run_root=root))
        folders.append(train_pipeline("tiny", run_root=root, progress=False, steps=4))
    a, b = (SoraMiniPipeline.from_pretrained(f).transformer.state_dict() for f in folders)
    assert all(torch.equal(a[k], b[k]) for k in a)
