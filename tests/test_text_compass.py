"""Direction words as compass words for the frozen encoder (sora_mini.text.frozen.CompassMiniLM)."""

import pytest
import torch


@pytest.mark.parametrize("caption, expected", [
    ("a small red circle starts at the top left and moves down right quickly, then turns up late.",
     "a small red circle starts at the top left and moves down east quickly, then turns up late."),
    ("a red circle moves right, then left and a blue square falls",
     "a red circle moves east, then west and a blue square falls"),
    ("a large red circle starts at the right and moves left slowly. the background is black.",
     "a large red circle starts at the right and moves west slowly. the background is black."),
    ("a green square starts at the bottom right and moves up left, then turns right early.",
     "a green square starts at the bottom right and moves up west, then turns east early."),
    ("a red circle moves up", "a red circle moves up"),  # vertical words differ from regions already
    ("a blue square starts at the left and stays still", "a blue square starts at the left and stays still"),
])
def test_directions_reworded_regions_kept(caption, expected):
    from sora_mini.text.frozen import compass_directions

    assert compass_directions(caption) == expected


def test_every_world_caption_keeps_its_regions_and_rewords_its_directions():
    """Over rendered specs: after rewording no direction is left/right, every region word stays."""
    from sora_mini.text.frozen import compass_directions
    from sora_mini.world.captions import detailed_caption, short_caption
    from sora_mini.world.sample import sample_spec

    for seed in range(300):
        spec = sample_spec(seed)
        for caption in (detailed_caption(spec), short_caption(spec)):
            out = compass_directions(caption)
            for verb in ("moves", "turns", "then"):
                for d in ("left", "right", "up left", "up right", "down left", "down right"):
                    assert f"{verb} {d}" not in out
            assert out.count(" left") + out.count(" west") == caption.count(" left")
            assert out.count(" right") + out.count(" east") == caption.count(" right")
            assert out.count("at the") == caption.count("at the")


def test_the_two_captions_with_one_bag_of_words_now_differ():
    """ "starts at the left and moves right" / "starts at the right and moves left": the same words
    for MiniLM, different ones after rewording; the encoder loads and saves as its own class."""
    from sora_mini.text.frozen import CompassMiniLM, FrozenMiniLM

    a = "a large red circle starts at the left and moves right slowly. the background is black."
    b = "a large red circle starts at the right and moves left slowly. the background is black."
    plain, compass = FrozenMiniLM(), CompassMiniLM()
    assert sorted(a.split()) == sorted(b.split())
    ea, eb = compass.encode([a]), compass.encode([b])
    assert torch.equal(ea.tokens, plain.encode([a.replace("moves right", "moves east")]).tokens)
    gap = lambda e1, e2: float((e1.pooled - e2.pooled).norm())
    assert gap(ea, eb) > gap(plain.encode([a]), plain.encode([b]))


def test_saved_and_loaded_by_name(tmp_path):
    from sora_mini.text.frozen import CompassMiniLM, FrozenMiniLM, frozen_encoder

    assert type(frozen_encoder("minilm-compass")) is CompassMiniLM and type(frozen_encoder("minilm")) is FrozenMiniLM
    with pytest.raises(ValueError, match="known: minilm"):
        frozen_encoder("t5")
    CompassMiniLM().save_pretrained(tmp_path / "te")
    assert type(CompassMiniLM.from_pretrained(tmp_path / "te")) is CompassMiniLM
    with pytest.raises(ValueError, match="holds a CompassMiniLM"):
        FrozenMiniLM.from_pretrained(tmp_path / "te")


def test_each_stage_reads_the_text_encoder_its_preset_names(monkeypatch):
    """cfg.train.text_encoder is stage 1's frozen encoder, cfg.train.finetune.text_encoder stage 2's;
    stage 1's plain MiniLM keeps the folder name it had before the field existed."""
    import dataclasses
    import json
    from pathlib import Path

    from sora_mini import config as config_module
    from sora_mini.artifacts.stages import finetune_training, stage_dirs
    from sora_mini.artifacts.video import video_model_dir, video_training

    small = config_module.PRESETS["small"]
    assert video_training("small").text_encoder == small.train.text_encoder
    shipped = json.loads((Path(__file__).parents[1] / "data/pretrained/small/training.json").read_text())
    assert [p.name for p in stage_dirs("small")] == [s["folder"] for s in shipped["stages"]]  # names kept
    assert finetune_training("small").text_encoder == small.train.finetune_stages()[0].text_encoder
    tiny = config_module.PRESETS["tiny"]
    plain = video_training("tiny")
    assert plain.text_encoder == "minilm"
    compass = dataclasses.replace(tiny, train=dataclasses.replace(tiny.train, text_encoder="minilm-compass"))
    monkeypatch.setitem(config_module.PRESETS, "tiny", compass)
    assert video_training("tiny").text_encoder == "minilm-compass"
    assert video_model_dir(video_training("tiny")) != video_model_dir(plain)
