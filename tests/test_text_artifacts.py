"""Get-or-train of the text parts: trained once into run_root/<scale>/<part>-<hash>/, then loaded."""

import dataclasses

import torch

import sora_mini.train.text as recipes
from sora_mini.artifacts import get_captioner, get_clip, get_text_encoder, part_dir, training_info
from sora_mini.text import config as text_config
from sora_mini.text.config import TextDataConfig, TextTrainConfig

QUICK = dataclasses.replace(
    text_config.TEXT_PRESETS["tiny"], name="tiny",
    data=TextDataConfig(train_videos=6, eval_videos=5),
    clip_train=TextTrainConfig(steps=2, batch_size=4, warmup_steps=0),
    captioner_train=TextTrainConfig(steps=2, batch_size=4, warmup_steps=0))


def test_get_clip_and_captioner_train_once_then_load(tmp_path, monkeypatch):
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", QUICK)
    clip = get_clip("tiny", run_root=tmp_path, progress=False)
    folder = part_dir(tmp_path, "tiny", "clip", QUICK.clip, QUICK.clip_train, QUICK.data)
    assert folder.parent == tmp_path / "tiny" and folder.name.startswith("clip-")
    metrics = training_info(folder)
    assert metrics["held_out"]["detailed"]["n"] == 5 and metrics["steps"] == 2
    cap = get_captioner("tiny", run_root=tmp_path, progress=False)
    assert "unparseable" in training_info(next((tmp_path / "tiny").glob("captioner-*")))["held_out"]

    def no_training(*a, **k):
        raise AssertionError("trained again although the part is cached")

    monkeypatch.setattr(recipes, "train_clip", no_training)
    monkeypatch.setattr(recipes, "train_captioner", no_training)
    again = get_clip("tiny", run_root=tmp_path)
    v = torch.zeros(1, 3, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(again(v, ["a red circle"]), clip(v, ["a red circle"]))
    assert get_captioner("tiny", run_root=tmp_path).generate(v) == cap.generate(v)
    # another recipe is another folder
    other = dataclasses.replace(QUICK.clip_train, steps=3)
    assert part_dir(tmp_path, "tiny", "clip", QUICK.clip, other, QUICK.data) != folder


def test_get_text_encoder_follows_the_preset(tmp_path, monkeypatch):
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", QUICK)
    enc = get_text_encoder("tiny", run_root=tmp_path)
    assert enc.dim == QUICK.text_encoder.hidden_size
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", dataclasses.replace(QUICK, encoder="minilm"))
    assert get_text_encoder("tiny", run_root=tmp_path).dim == 384


def test_captioner_video_encoder_starts_from_the_trained_clip(tmp_path, monkeypatch):
    import pytest

    from sora_mini.artifacts import text_part_dir
    from sora_mini.pretrained import config_hash

    assert config_hash(TextTrainConfig()) != config_hash(TextTrainConfig(video_init="clip"))  # set: hashed
    frozen = dataclasses.replace(QUICK, captioner_train=dataclasses.replace(
        QUICK.captioner_train, video_init="clip", freeze_video=True))
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", frozen)
    cap = get_captioner("tiny", run_root=tmp_path, progress=False)
    clip = get_clip("tiny", run_root=tmp_path)  # trained first, for the captioner
    for name, p in clip.video.state_dict().items():  # frozen: still CLIP's after training
        torch.testing.assert_close(cap.video.state_dict()[name], p, atol=0, rtol=0)
    mine = text_part_dir("captioner", "tiny", run_root=tmp_path)
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", QUICK)
    assert text_part_dir("captioner", "tiny", run_root=tmp_path) != mine  # another recipe, another folder
    with pytest.raises(ValueError, match="set video_init='clip' too"):
        TextTrainConfig(freeze_video=True)
    wide = dataclasses.replace(frozen, captioner=dataclasses.replace(frozen.captioner, video_channels=(8, 32)))
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", wide)
    with pytest.raises(ValueError, match="cannot start from CLIP"):
        get_captioner("tiny", run_root=tmp_path, progress=False)


def test_a_second_captioner_stage_starts_from_the_first_on_its_own_clips(tmp_path, monkeypatch):
    import pytest

    from sora_mini.artifacts.text import captioner_stage_dirs
    from sora_mini.text.captioner import VideoCaptioner

    stage2 = TextTrainConfig(steps=2, batch_size=4, warmup_steps=0, frames=(3,), videos=4)
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", QUICK)
    assert len(captioner_stage_dirs("tiny", run_root=tmp_path)) == 1
    monkeypatch.setitem(text_config.TEXT_PRESETS, "tiny", dataclasses.replace(QUICK, captioner_finetune=stage2))
    first_dir, second_dir = captioner_stage_dirs("tiny", run_root=tmp_path)
    assert first_dir == part_dir(tmp_path, "tiny", "captioner", QUICK.captioner, QUICK.captioner_train, QUICK.data)

    seen, train = [], recipes.train_captioner

    def spy(model, data, recipe, **kw):
        seen.append(({k: v.clone() for k, v in model.state_dict().items()}, len(data),
                     {tuple(v.shape[:1]) for v in data.videos}))
        return train(model, data, recipe, **kw)

    monkeypatch.setattr(recipes, "train_captioner", spy)
    cap = get_captioner("tiny", run_root=tmp_path, progress=False)
    assert len(seen) == 2  # both stages trained, in order
    assert seen[0][1:] == (6, {(5,)}) and seen[1][1:] == (4, {(3,)})  # the preset's clips, then the stage's own
    first = VideoCaptioner.from_pretrained(first_dir)
    for name, p in first.state_dict().items():  # stage 2 started from stage 1's trained weights
        torch.testing.assert_close(seen[1][0][name], p, atol=0, rtol=0)
    info = training_info(second_dir)
    assert info["init_from"] == first_dir.name and info["training"]["frames"] == [3]
    assert info["held_out"]["n"] == 5 and info["held_out_first_stage_clips"]["n"] == 5
    v = torch.zeros(1, 3, 3, 32, 32)
    assert get_captioner("tiny", run_root=tmp_path).generate(v) == cap.generate(v)  # the last stage, cached
    assert len(seen) == 2
    get_captioner("tiny", run_root=tmp_path, retrain=True, progress=False)
    assert len(seen) == 3 and seen[2][1] == 4  # retrain: the last stage only
    with pytest.raises(ValueError, match="leave its video_init unset"):
        dataclasses.replace(QUICK, captioner_finetune=dataclasses.replace(stage2, video_init="clip"))
    with pytest.raises(ValueError, match="clip lengths"):
        TextTrainConfig(frames=())
