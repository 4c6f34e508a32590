"""The video captioner: it overfits a handful of captions, decodes greedily and by seeded sampling,
round-trips, and its captions are scored through the grammar."""

import pytest
import torch

from sora_mini.text.captioner import CaptionerConfig, VideoCaptioner
from sora_mini.text.config import TextTrainConfig
from sora_mini.text.data import CaptionedVideos
from sora_mini.text.scoring import evaluate_captioner, score_captions
from sora_mini.train.text import train_captioner
from sora_mini.world.captions import detailed_caption, short_caption
from sora_mini.world.sample import sample_specs

CFG = CaptionerConfig(video_channels=(8, 16), hidden_size=64, layers=2, heads=4)


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    data = CaptionedVideos(3, seed=5, sizes=((32, 32),), frames=(5,), max_objects=1)
    model = VideoCaptioner(CFG)
    history = train_captioner(model, data, TextTrainConfig(steps=80, batch_size=3, lr=5e-3, warmup_steps=5),
                              progress=False)
    return model.eval(), data, history


def test_captioner_overfits_a_handful_of_captions(fitted):
    model, data, history = fitted
    assert history[-1]["loss"] < 0.1 < history[0]["loss"]
    scores = evaluate_captioner(model, data)
    assert scores["exact"] == 1.0 and scores["unparseable"] == 0.0, scores["examples"]


def test_sampled_decoding_is_seeded_and_greedy_is_deterministic(fitted):
    model, data, _ = fitted
    v = data.items(range(3))["video"]
    assert model.generate(v) == model.generate(v)
    a = model.generate(v, greedy=False, temperature=3.0, seed=1, max_length=12)
    assert a == model.generate(v, greedy=False, temperature=3.0, seed=1, max_length=12)
    assert a != model.generate(v, greedy=False, temperature=3.0, seed=2, max_length=12)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        model.generate(v, greedy=False, temperature=0)


def test_captioner_round_trip(fitted, tmp_path):
    model, data, _ = fitted
    model.save_pretrained(tmp_path / "cap")
    again = VideoCaptioner.from_pretrained(tmp_path / "cap")
    b = data.items(range(3))
    with torch.no_grad():
        torch.testing.assert_close(again.loss(b["video"], b["detailed"])[0], model.loss(b["video"], b["detailed"])[0],
                                   atol=0, rtol=0)
    assert again.generate(b["video"]) == model.generate(b["video"])


def test_score_captions_counts_right_wrong_and_unparseable():
    specs = sample_specs(20, seed=7)
    perfect = score_captions([detailed_caption(s) for s in specs], specs)
    assert perfect["exact"] == 1.0 and perfect["unparseable"] == 0.0 and perfect["background"] == 1.0
    assert all(v == 1.0 for v in perfect["attributes"].values() if v is not None)
    short = score_captions([short_caption(s) for s in specs], specs)  # sizes and regions unstated
    assert short["attributes"]["color"] == 1.0 and short["attributes"]["size"] == 0.0
    assert short["background"] == 0.0 and short["exact"] == 0.0
    garbage = score_captions(["circle circle the the"] * 20, specs)
    assert garbage["unparseable"] == 1.0 and garbage["attributes"]["shape"] == 0.0
    shuffled = score_captions([detailed_caption(s) for s in specs[1:] + specs[:1]], specs)
    assert shuffled["exact"] < 0.2 and shuffled["background"] < 1.0


def test_colour_order_lists_objects_by_the_palette_and_scores_the_same():
    from sora_mini.world.captions import caption_objects
    from sora_mini.world.spec import COLORS

    specs = [s for s in sample_specs(40, seed=3) if len(s.objects) > 1]
    assert specs, "the sampler drew no scene of several objects"
    for s in specs:
        ranks = [COLORS.index(o.color) for o in caption_objects(s, "color")]
        assert ranks == sorted(ranks)
    ordered = score_captions([detailed_caption(s, order="color") for s in specs], specs)
    assert ordered["exact"] == 1.0 and ordered["attributes"]["color"] == 1.0
    assert any(detailed_caption(s, order="color") != detailed_caption(s) for s in specs)
    with pytest.raises(ValueError, match="unknown caption order"):
        detailed_caption(specs[0], order="size")
    with pytest.raises(ValueError, match="unknown object_order"):
        CaptionerConfig(object_order="size")


def test_captioner_trains_on_captions_in_its_object_order():
    from sora_mini.train.text import _captions

    data = CaptionedVideos(6, seed=11, sizes=((32, 32),), frames=(1,), max_objects=3)
    batch = data.items(range(6))
    assert _captions(batch, "detailed", 0) == batch["detailed"]
    assert _captions(batch, "detailed", 0, "color") == [detailed_caption(s, order="color") for s in batch["specs"]]


def test_a_frozen_video_encoder_trains_on_its_tokens_computed_once():
    from sora_mini.train.text import video_tokens

    torch.manual_seed(0)
    data = CaptionedVideos(4, seed=2, sizes=((32, 32), (32, 48)), frames=(5,), max_objects=2)
    model = VideoCaptioner(CFG)
    tokens = video_tokens(model.video, data)
    assert [tuple(t.shape) for t in tokens] == [(5 * (h // 4) * (w // 4), 16) for h, w in
                                                 (v.shape[1:3] for v in data.videos)]
    same = [i for i in range(4) if data.videos[i].shape == data.videos[0].shape]
    with torch.no_grad():
        direct = model.loss(data.items(same)["video"], [data.detailed[i] for i in same])[0]
        cached = model.loss(None, [data.detailed[i] for i in same],
                            video_tokens=torch.stack([tokens[i] for i in same]).float())[0]
    torch.testing.assert_close(cached, direct, atol=2e-2, rtol=0)  # tokens kept in bf16
    assert not model.video_frozen
    model.video.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    history = train_captioner(model, data, TextTrainConfig(steps=3, batch_size=2, lr=1e-2, warmup_steps=0),
                              progress=False)
    assert len(history) and model.video_frozen
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("video."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
