"""``sora-mini train / sample / plan`` at tiny scale, in-process through ``cli.main``, into a
temporary run root (the tiny autoencoder is copied in when this checkout has one in ``runs/``,
else it is trained there first, about 20 s), and the clip-folder training set behind ``--data``."""

import contextlib
import io
import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from sora_mini import cli
from sora_mini.artifacts.autoencoder import autoencoder_dir
from sora_mini.artifacts.store import is_complete, training_info
from sora_mini.artifacts.video import AUTOENCODER_KIND
from sora_mini.paths import project_root
from sora_mini.pipeline import is_pipeline_dir, trained_dir
from sora_mini.train.clips import ClipFolderData, center_crop, clip_folder_data, folder_clips
from sora_mini.videoio import read_video, write_video


def run_cli(argv: list[str]) -> dict:
    """``cli.main(argv)``'s stdout as JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(argv)
    return json.loads(out.getvalue())


@pytest.fixture(scope="session")
def run_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    shipped = autoencoder_dir("tiny", kind=AUTOENCODER_KIND, run_root=project_root() / "runs")
    if is_complete(shipped):
        shutil.copytree(shipped, autoencoder_dir("tiny", kind=AUTOENCODER_KIND, run_root=root))
    return root


@pytest.fixture(scope="session")
def trained(run_root):
    """The JSON of a first `train --scale tiny` (the scale's own 50 steps, then stage 2's 20)."""
    return run_cli(["train", "--scale", "tiny", "--run-root", str(run_root), "--device", "cpu"])


# ----------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------
def test_train_writes_the_pipeline_and_reports_it(trained, run_root):
    assert trained["folder"] == str(trained_dir("tiny", run_root=run_root))
    assert is_pipeline_dir(trained["folder"])
    assert trained["status"] == "started" and trained["steps"] == 50 + 20  # stage 1, then stage 2
    assert [st["steps"] for st in trained["stages"]] == [50, 20] and trained["stages"][-1]["folder"] == trained["folder"]
    assert trained["seconds"] > 0 and np.isfinite(trained["final_loss"])


def test_train_again_finds_it_trained_and_resume_is_accepted(trained, run_root):
    again = run_cli(["train", "--scale", "tiny", "--run-root", str(run_root), "--resume", "--device", "cpu"])
    assert again["folder"] == trained["folder"] and again["status"] == "already trained"
    assert again["final_loss"] == trained["final_loss"]


def test_train_for_minutes_predicts_its_steps(run_root):
    out = run_cli(["train", "--scale", "tiny", "--run-root", str(run_root), "--minutes", "0.05", "--device", "cpu"])
    assert out["folder"] != str(trained_dir("tiny", run_root=run_root))  # another budget, another folder
    assert 5 <= out["steps"] and out["train_seconds"] < 60
    assert training_info(out["folder"])["trainer"]["minutes"] == 0.05


def test_resume_without_a_checkpoint_exits_2(run_root, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "--scale", "tiny", "--run-root", str(run_root), "--resume", "--steps", "3"])
    assert e.value.code == 2
    assert "nothing to resume" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------------
# sample
# ----------------------------------------------------------------------------------------------
def sample(run_root, out, *extra) -> dict:
    return run_cli(["sample", "a red circle moves right", "--scale", "tiny", "--run-root", str(run_root),
                    "--frames", "9", "--steps", "3", "--out", str(out), "--device", "cpu", *extra])


def test_sample_writes_gif_and_reports_what_it_used(trained, run_root, tmp_path):
    info = sample(run_root, tmp_path / "a.gif", "--seed", "4", "--guidance", "2.5", "--height", "32",
                  "--width", "48")
    assert read_video(tmp_path / "a.gif").shape == (9, 32, 48, 3)
    assert info["size"] == [9, 32, 48] and info["seed"] == 4 and info["guidance"] == 2.5 and info["steps"] == 3
    assert info["prompt"] == "a red circle moves right" and "red circle" in info["used_prompt"]
    assert info["sampler"] and info["seconds"] > 0 and info["out"] == str(tmp_path / "a.gif")
    plain = sample(run_root, tmp_path / "b.gif", "--no-extend")
    assert plain["used_prompt"] == plain["prompt"]


def test_sample_npz_same_seed_same_video(trained, run_root, tmp_path):
    for name, seed in (("a", "1"), ("b", "1"), ("c", "2")):
        sample(run_root, tmp_path / f"{name}.npz", "--seed", seed)
    a, b, c = (read_video(tmp_path / f"{n}.npz") for n in "abc")
    assert a.shape == (9, 32, 32, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    info = sample(run_root, tmp_path / "d.npz", "--seed", "1", "--guidance-interval", "0.5", "1")
    assert info["guidance_interval"] == [0.5, 1.0] and not np.array_equal(read_video(tmp_path / "d.npz"), a)


def test_sample_bad_size_exits_2_naming_the_nearest(trained, run_root, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        sample(run_root, tmp_path / "x.gif", "--height", "30", "--frames", "6")
    err = capsys.readouterr().err
    assert e.value.code == 2 and "Traceback" not in err
    assert "height 30" in err and "24, 32" in err and "5, 9" in err
    assert not (tmp_path / "x.gif").exists()


# ----------------------------------------------------------------------------------------------
# plan
# ----------------------------------------------------------------------------------------------
def test_plan_json_before_anything_is_trained(tmp_path):
    plan = run_cli(["plan", "--scale", "tiny", "--run-root", str(tmp_path), "--json"])
    t = plan["tokens_per_example"]
    assert 0 < t["min"] <= t["mean"] <= t["max"] <= plan["pack_length"]
    assert plan["tokens_per_step"] >= 1024 and plan["examples_per_step"] >= plan["tokens_per_step"] / t["max"]
    assert plan["parameters"] > 0 and plan["flops_per_step"] > 0
    two = plan["stage2"]  # tiny has a second stage, as small does
    assert two["data"]["frames"] == [9] and two["steps"] > 0 and two["folder"] != plan["folder"]
    assert plan["flops_total"] == pytest.approx(plan["flops_per_step"] * plan["steps"]
                                                + two["flops_per_step"] * two["steps"])
    s, s2 = plan["seconds"], two["seconds"]
    assert s["step"] > 0 and s["data"] > 0 and s["autoencoder"] > 0  # nothing is trained or cached here
    assert s2["step"] > 0 and s2["data"] > 0 and s2["autoencoder"] == 0
    assert s["total"] == pytest.approx(s["train"] + s["data"] + s["autoencoder"] + s2["train"] + s2["data"])
    assert plan["peak_memory_bytes"] > plan["memory"]["latent_set_bytes"] > 0
    assert not any(tmp_path.rglob("*.safetensors"))  # planning trains and writes nothing
    text = cli.format_plan(plan)
    assert "parameters" in text and "stage 2" in text


# ----------------------------------------------------------------------------------------------
# --data: a folder of clips
# ----------------------------------------------------------------------------------------------
def test_center_crop_keeps_the_middle_and_valid_frames():
    video = np.arange(7 * 30 * 45 * 3, dtype=np.int64).reshape(7, 30, 45, 3).astype(np.uint8)
    crop = center_crop(video, 8, 4)
    assert crop.shape == (5, 24, 40, 3)  # 1 + 4n frames, multiples of 8
    np.testing.assert_array_equal(crop, video[:5, 3:27, 2:42])
    assert center_crop(video[:, :6], 8, 4) is None


def write_clip(folder, name, video, caption="a red circle moves right"):
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / f"{name}.npz", video)
    (folder / f"{name}.txt").write_text(caption)


def test_folder_clips_crops_and_rejects_a_folder_of_tiny_clips(tmp_path):
    write_clip(tmp_path / "ok", "odd", np.zeros((7, 30, 45, 3), np.uint8))
    with pytest.warns(UserWarning, match="center-cropped"):
        clips, captions = folder_clips(clip_folder_data(tmp_path / "ok", spatial_multiple=8, temporal_factor=4))
    assert [c.shape for c in clips] == [(5, 24, 40, 3)] and captions == ["a red circle moves right"]
    write_clip(tmp_path / "small", "dot", np.zeros((5, 6, 6, 3), np.uint8))
    data = clip_folder_data(tmp_path / "small", spatial_multiple=8, temporal_factor=4)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="no usable clip"):
        warnings.simplefilter("ignore")
        folder_clips(data)


def test_the_folder_hash_follows_the_files(tmp_path):
    write_clip(tmp_path / "clips", "a", np.zeros((5, 32, 32, 3), np.uint8))
    first = trained_dir("tiny", run_root=tmp_path, data_folder=tmp_path / "clips")
    (tmp_path / "clips" / "a.txt").write_text("a blue square")
    second = trained_dir("tiny", run_root=tmp_path, data_folder=tmp_path / "clips")
    assert first != second != trained_dir("tiny", run_root=tmp_path)
    stale = ClipFolderData(str(tmp_path / "clips"), "0" * 64, 8, 4)
    with pytest.raises(ValueError, match="changed"):
        folder_clips(stale)


def test_a_few_clips_fill_every_step():
    from sora_mini.train.video import LatentVideos, VideoBatches, VideoRecipe

    latents = [torch.randn(4, 3, 8, 8) for _ in range(3)]  # 48 tokens each at patch (1, 2, 2)
    videos = LatentVideos(latents, ["a", "b", "c"], torch.randn(3, 4, 8), torch.ones(3, 4, dtype=torch.bool),
                          torch.randn(1, 2, 8), torch.ones(1, 2, dtype=torch.bool), [(9, 32, 32)] * 3)
    batches = VideoBatches(videos, VideoRecipe(tokens_per_step=1024), (1, 2, 2))
    for step in range(3):
        assert batches(step)["tokens"] >= 1024


def test_train_on_a_folder_of_three_clips(run_root, tmp_path):
    from sora_mini.config import get_config
    from sora_mini.world.datasets import export_world_samples

    world = get_config("tiny").world
    export_world_samples(tmp_path / "clips", 3, sizes=world.sizes, frames=world.frames)
    out = run_cli(["train", "--scale", "tiny", "--data", str(tmp_path / "clips"), "--steps", "3",
                   "--run-root", str(run_root), "--device", "cpu"])
    assert is_pipeline_dir(out["folder"]) and out["steps"] == 3 and np.isfinite(out["final_loss"])
    assert out["folder"] != str(trained_dir("tiny", run_root=run_root, steps=3))
    record = training_info(out["folder"])
    assert record["result"]["videos"] == 3 and record["data"]["path"] == str((tmp_path / "clips").resolve())


def test_plan_times_only_the_steps_it_asks_for(monkeypatch):
    """measure_training runs steps + 1 Trainer steps, not the recipe's thousands (the Trainer fixes
    its step count when it is built)."""
    from sora_mini.artifacts import plan as plan_module
    from sora_mini.artifacts.video import video_training
    from sora_mini.models.video_dit import VideoDiT
    from sora_mini.train.video import VideoBatches

    training = video_training("tiny")
    batches = VideoBatches(plan_module.stand_in_videos(training, 8), training.recipe, training.model.patch_size)
    seen, real = [], plan_module._step_times
    monkeypatch.setattr(plan_module, "_step_times", lambda trainer: seen.append(real(trainer)) or seen[-1])
    out = plan_module.measure_training(VideoDiT(training.model), training, batches, steps=2)
    assert len(seen) == 1 and len(seen[0]) == 3 and out["step_seconds"] > 0
