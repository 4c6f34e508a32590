"""SoraMiniPipeline: trained at tiny, same seed same video, save/load, sizes it cannot make."""

import dataclasses
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
    assert index["components"] == {"transformer": "VideoDiT", "vae": "VideoAutoencoder", "text_encoder": "CompassMiniLM"}
    assert (tiny_pipeline_dir / "training.json").is_file() and (tiny_pipeline_dir / "log.jsonl").is_file()
    assert resolve_pipeline_dir("tiny", run_root=tiny_run_root) == tiny_pipeline_dir
    pipe = get_pipeline("tiny", run_root=tiny_run_root, progress=False)  # no second training
    assert isinstance(pipe, SoraMiniPipeline)


def ft_whiten() -> bool:
    from sora_mini.config import get_config

    return get_config("tiny").train.finetune.whiten_text


def test_two_stages_the_second_from_the_first(tiny_pipeline_dir, tiny_run_root):
    """tiny, like small, trains stage 2 from stage 1's EMA weights; the pipeline is stage 2's."""
    from sora_mini.artifacts.stages import finetune_training, stage_dirs
    from sora_mini.artifacts.store import training_info, training_log
    from sora_mini.artifacts.video import initial_weights, train_video_model
    from sora_mini.models.video_dit import VideoDiT

    first, second = stage_dirs("tiny", run_root=tiny_run_root)
    assert second == tiny_pipeline_dir != first
    info = training_info(second)
    assert info["result"]["init_from"] == first.name and training_info(first)["result"]["init_from"] is None
    ft = finetune_training("tiny")
    assert info["data"]["frames"] == list(ft.data.frames) and info["trainer"]["steps"] == ft.trainer.steps
    assert [r["step"] for r in training_log(second)][-1] == ft.trainer.steps
    # stage 2 starts from stage 1's weights: loaded, they are stage 1's exactly, and training moved them
    model = VideoDiT(ft.model)
    initial_weights(model, first)
    start = VideoDiT.from_pretrained(first / "transformer").state_dict()
    end = VideoDiT.from_pretrained(second / "transformer").state_dict()
    assert all(torch.equal(model.state_dict()[k], start[k]) for k in start)
    assert any(not torch.equal(start[k], end[k]) for k in start)
    # stage 2 whitens its caption tokens (the preset's whiten_text); stage 1 does not
    assert info["result"]["whiten_text"] is ft_whiten() and training_info(first)["result"].get("whiten_text", False) is False
    assert VideoDiT.from_pretrained(second / "transformer").text_conditioner.whitened
    assert not VideoDiT.from_pretrained(first / "transformer").text_conditioner.whitened
    # stage 2 reads its captions with the preset's frozen encoder (compass words); stage 1 with MiniLM
    from sora_mini.artifacts.video import video_training
    from sora_mini.config import get_config
    from sora_mini.text.frozen import FROZEN_ENCODERS

    assert ft.text_encoder == get_config("tiny").train.finetune.text_encoder and video_training("tiny").text_encoder == "minilm"
    components = json.loads((second / "pipeline.json").read_text())["components"]
    assert components["text_encoder"] == FROZEN_ENCODERS[ft.text_encoder].__name__
    assert json.loads((first / "pipeline.json").read_text())["components"]["text_encoder"] == "FrozenMiniLM"
    # a foreign model is refused by name, and stage 2 needs the preset's recipe
    with pytest.raises(ValueError, match="hidden_size"):
        initial_weights(VideoDiT(ft.model, hidden_size=ft.model.hidden_size * 2), first)
    with pytest.raises(ValueError, match="stage 2 is the preset's recipe"):
        train_video_model("tiny", run_root=tiny_run_root, stage=2, steps=3)
    assert trained_dir("tiny", run_root=tiny_run_root, steps=3) != second  # an override: one stage


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


def test_guidance_interval_default_is_saved_and_overridable(tiny_pipeline_dir, tmp_path):
    pipe = SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)
    kw = {"num_frames": 5, "num_inference_steps": 4, "seed": 3}
    every = pipe("a red circle", **kw).video
    assert np.array_equal(pipe("a red circle", guidance_interval=(0.0, 1.0), **kw).video, every)
    pipe.defaults = dataclasses.replace(pipe.defaults, guidance_interval=(0.5, 1.0))
    limited = pipe("a red circle", **kw).video
    assert not np.array_equal(limited, every)
    assert np.array_equal(pipe("a red circle", guidance_interval=(0.0, 1.0), **kw).video, every)
    pipe.save_pretrained(tmp_path / "copy")
    again = SoraMiniPipeline.from_pretrained(tmp_path / "copy")
    assert again.defaults.guidance_interval == (0.5, 1.0)
    assert np.array_equal(again("a red circle", **kw).video, limited)


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
    (bad / PIPELINE_NAME).write_text(json.dumps({**index, "components": {**index["components"], "text_encoder": "T5"}}))
    with pytest.raises(ValueError, match="'T5'; known: .*CompassMiniLM"):
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


def test_a_third_stage_trains_from_the_second(tiny_pipeline_dir, tiny_run_root):
    """A recipe of three stages: stage 3 starts from stage 2's EMA weights, on its own scenes."""
    import dataclasses

    from sora_mini.artifacts.stages import finetune_training, stage_chain, stage_dirs, staged_log
    from sora_mini.artifacts.store import training_info
    from sora_mini.artifacts.video import train_video_model
    from sora_mini.config import get_config
    from sora_mini.models.video_dit import VideoDiT

    tiny = get_config("tiny")
    ft = tiny.train.finetune
    third = dataclasses.replace(ft, steps=3, whiten_text=False, max_objects=1, motions=("move",), videos=16)
    cfg = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, finetune=(ft, third)))
    folders = stage_dirs(cfg, run_root=tiny_run_root)
    assert folders[:2] == stage_dirs("tiny", run_root=tiny_run_root) and len(folders) == 3  # stages 1-2 reused
    training = finetune_training(cfg, stage=3)
    assert training.data.max_objects == 1 and training.data.motions == ("move",) and training.trainer.steps == 3
    with pytest.raises(ValueError, match="stage 4"):
        finetune_training(cfg, stage=4)
    with pytest.raises(ValueError, match="whitened the caption tokens already"):
        bad = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, finetune=(ft, dataclasses.replace(third, whiten_text=True))))
        finetune_training(bad, stage=3)
    folder = train_pipeline(cfg, run_root=tiny_run_root, progress=False)
    assert folder == folders[2] and stage_chain(folder) == folders
    assert training_info(folder)["result"]["init_from"] == folders[1].name
    assert [r["stage"] for r in staged_log(folders)][-1] == 3
    start = VideoDiT.from_pretrained(folders[1] / "transformer").state_dict()
    end = VideoDiT.from_pretrained(folder / "transformer").state_dict()
    assert any(not torch.equal(start[k], end[k]) for k in start)
    assert VideoDiT.from_pretrained(folder / "transformer").text_conditioner.whitened  # stage 2's, kept
    with pytest.raises(ValueError, match="stage must be one of 1 to 3"):
        train_video_model(cfg, run_root=tiny_run_root, stage=4)
