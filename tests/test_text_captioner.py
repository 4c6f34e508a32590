"""The video captioner: it overfits a handful of captions, decodes greedily and by seeded sampling,
round-trips, and its captions are scored through the grammar."""

import dataclasses

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


def test_fewer_downsampling_stages_give_finer_tokens_from_the_same_weights(tmp_path):
    from sora_mini.pretrained import config_hash
    from sora_mini.text.video_encoder import VideoEncoder

    video = torch.rand(2, 3, 5, 32, 48) * 2 - 1
    coarse, fine = VideoEncoder((8, 16)), VideoEncoder((8, 16), downsample=1)
    fine.load_state_dict(coarse.state_dict())  # the stride holds no weight
    assert coarse(video)[0].shape == (2, 5 * 8 * 12, 16) and coarse.factor == 4
    assert fine(video)[0].shape == (2, 5 * 16 * 24, 16) and fine.factor == 2
    assert VideoEncoder((8, 16), downsample=0)(video)[0].shape == (2, 5 * 32 * 48, 16)
    with pytest.raises(ValueError, match="from 0 to 2"):
        VideoEncoder((8, 16), downsample=3)
    with pytest.raises(ValueError, match="multiples of 2"):
        fine(torch.zeros(1, 3, 2, 31, 32))
    # the captioner's option: unset keeps every stage downsampling (and the config's hash), set it round-trips
    assert config_hash(CaptionerConfig(video_downsample=None)) == config_hash(CaptionerConfig())
    assert config_hash(CaptionerConfig(video_downsample=2)) != config_hash(CaptionerConfig())
    model = VideoCaptioner(CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2, video_downsample=1))
    assert model.memory(video).shape == (2, 5 * 16 * 24, 32)
    model.save_pretrained(tmp_path / "cap")
    again = VideoCaptioner.from_pretrained(tmp_path / "cap")
    assert again.config.video_downsample == 1
    torch.testing.assert_close(again.memory(video), model.memory(video), atol=0, rtol=0)


def test_frame_difference_channels_start_as_the_encoder_they_are_loaded_from():
    from sora_mini.text.video_encoder import VideoEncoder

    torch.manual_seed(0)
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    plain, diff = VideoEncoder((8, 16)), VideoEncoder((8, 16), differences=True)
    assert diff.net[0].weight.shape[1] == plain.net[0].weight.shape[1] + 3
    diff.load_encoder(plain)
    torch.testing.assert_close(diff(video)[0], plain(video)[0], atol=1e-6, rtol=0)
    # reading only the difference channels: two still videos of different content look alike, a moving one does not
    with torch.no_grad():
        diff.net[0].weight.zero_()
        diff.net[0].weight[:, 6:] = 1.0
    still_a, still_b = (video[:, :, i:i + 1].expand(-1, -1, 4, -1, -1) for i in (0, 1))
    assert not torch.equal(still_a, still_b) and torch.equal(diff(still_a)[0], diff(still_b)[0])
    moving = torch.cat([video[:, :, :1], video[:, :, :1].roll(1, -1)], 2)
    assert not torch.allclose(diff(moving)[0][:, 16:], diff(video[:, :, :1].expand(-1, -1, 2, -1, -1))[0][:, 16:])
    cap = VideoCaptioner(CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2, video_differences=True))
    assert cap.video.differences and cap.memory(video).shape == (2, 4 * 4 * 4, 32)


def test_motion_confusions_split_moves_and_turns_by_bounces():
    from sora_mini.text.scoring import motion_confusions

    data = CaptionedVideos(24, seed=3, sizes=((32, 32),), frames=(17,), max_objects=1)
    truth = motion_confusions(data.detailed, data)
    movers = sum(s.objects[0].motion in ("move", "turn") for s in data.specs)
    assert sum(truth.values()) == movers > 0
    assert all(said == true for (true, _, said) in truth) and {b for (_, b, _) in truth} == {"bounce", "no bounce"}
    # every mover captioned as standing still: each lands off the diagonal, in its own bounce column
    still = [c.split(" moves ")[0] + " stays still. the background is " + s.background + "." if " moves " in c else c
             for c, s in zip(data.detailed, data.specs)]
    wrong = motion_confusions(still, data)
    assert {said for (_, _, said) in wrong} == {"still"} and sum(wrong.values()) == movers
    assert {(t, b) for (t, b, _) in wrong} == {(t, b) for (t, b, _) in truth}
    with pytest.raises(ValueError, match="one caption per video"):
        motion_confusions(still[:-1], data)


def test_direction_changes_find_every_turn_and_every_bounce_in_the_renderers_tracks():
    from sora_mini.text.scoring import direction_changes

    data = CaptionedVideos(64, seed=3, sizes=((32, 32),), frames=(17,), max_objects=1)
    table = direction_changes(data)
    assert sum(table.values()) == sum(s.objects[0].motion in ("move", "turn") for s in data.specs)
    assert table[("turn", "no bounce", "changed")] > 0 and table[("move", "no bounce", "straight")] > 0
    assert table[("move", "bounce", "changed")] > 0  # a bounce changes the direction as a turn does
    assert table.get(("move", "no bounce", "changed"), 0) == 0  # a move between walls never does
    assert not any(t == "turn" and seen == "straight" for (t, _, seen) in table)  # every turn is seen
    assert {seen for (_, _, seen) in direction_changes(data, degrees=180.0)} == {"straight"}


def test_beam_search_weighs_the_whole_caption_where_greedy_commits_to_one_token(fitted):
    model, data, _ = fitted
    tok = model.tokenizer
    red, blue, circle = (tok.convert_tokens_to_ids(w) for w in ("red", "blue", "circle"))
    eos, vocab = tok.eos_token_id, model.config.vocab_size

    def table(memory, ids, mask=None):  # a made-up model: "red" (0.6) is followed by an unsure word,
        out = torch.full((ids.shape[0], ids.shape[1], vocab), -1e4)  # "blue" (0.4) by a sure end
        for r, row in enumerate(ids.tolist()):
            probs = {1: {red: 0.6, blue: 0.4}}.get(len(row)) or (
                {circle: 0.55, eos: 0.45} if row[1] == red and len(row) == 2 else {eos: 1.0})
            for t, p in probs.items():
                out[r, -1, t] = float(torch.log(torch.tensor(p)))
        return out

    model.logits = table
    try:
        v = data.items(range(2))["video"]
        assert model.generate(v) == ["red circle"] * 2  # greedy: 0.6 x 0.55 = 0.33 ("red" then "circle")
        assert model.generate(v, num_beams=2) == ["blue"] * 2  # the likelier caption: 0.4
        assert model.generate(v, num_beams=1) == model.generate(v)
    finally:
        del model.logits
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="num_beams must be a positive integer"):
            model.generate(v, num_beams=bad)
    with pytest.raises(ValueError, match="pass greedy=True"):
        model.generate(v, greedy=False, num_beams=2)
    assert model.generate(v, num_beams=3) == model.generate(v)  # the overfit model is sure of its captions


def test_position_features_tell_every_token_where_and_when_it_is():
    from sora_mini.text.video_encoder import VideoEncoder, fourier_features

    video = torch.rand(2, 3, 5, 16, 24) * 2 - 1
    plain, placed = VideoEncoder((8, 16)), VideoEncoder((8, 16), positions=3)
    placed.load_encoder(plain)
    (a, pooled_a), (b, pooled_b) = plain(video), placed(video)
    assert b.shape == (2, 5 * 4 * 6, 16 + 18) and placed.dim == 34
    torch.testing.assert_close(b[..., :16], a, atol=0, rtol=0)  # the features unchanged, positions appended
    torch.testing.assert_close(pooled_b, pooled_a, atol=0, rtol=0)  # CLIP's pooled vector ignores them
    pos = b[0, :, 16:]
    assert torch.equal(pos, b[1, :, 16:]) and len(torch.unique(pos, dim=0)) == len(pos)  # one per token
    # the first and the last frame differ (the lowest frequency spans half a period)
    ends = fourier_features(torch.tensor([[-1.0], [1.0]]), 1)
    assert not torch.allclose(ends[0], ends[1])
    with pytest.raises(ValueError, match="number of frequencies"):
        VideoEncoder((8, 16), positions=-1)
    model = VideoCaptioner(CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2, video_positions=3))
    assert model.memory_proj.in_features == 34 and model.memory(video).shape == (2, 120, 32)


def test_the_auxiliary_motion_loss_reads_its_labels_from_the_caption_and_adds_its_weight():
    from sora_mini.text.captioner import caption_motions
    from sora_mini.world import MOTIONS

    captions = ["a small red circle starts at the left and moves right slowly, then turns up late. "
                "a large blue square starts in the center and falls. the background is black.",
                "a small green triangle starts at the top and stays still. the background is navy."]
    labels = caption_motions(captions)
    assert labels.shape == (2, len(MOTIONS))
    assert {MOTIONS[i] for i in labels[0].nonzero().flatten().tolist()} == {"turn", "fall"}
    assert {MOTIONS[i] for i in labels[1].nonzero().flatten().tolist()} == {"still"}
    with pytest.raises(ValueError, match="motion_loss"):
        CaptionerConfig(motion_loss=0.0)

    torch.manual_seed(0)
    data = CaptionedVideos(3, seed=5, sizes=((32, 32),), frames=(5,), max_objects=2)
    batch = data.items(range(3))
    cfg = CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2, motion_loss=1.0)
    plain = VideoCaptioner(dataclasses.replace(cfg, motion_loss=None))
    one, two = VideoCaptioner(cfg), VideoCaptioner(dataclasses.replace(cfg, motion_loss=2.0))
    two.load_state_dict(one.state_dict())
    plain.load_state_dict({k: v for k, v in one.state_dict().items() if not k.startswith("motion_head")})
    with torch.no_grad():
        (l0, m0), (l1, m1), (l2, _) = (m.loss(batch["video"], batch["detailed"]) for m in (plain, one, two))
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            one.motion_logits(one.video(batch["video"])[0]), caption_motions(batch["detailed"]))
    assert "motion_loss" not in m0 and m1["motion_loss"] == pytest.approx(expected.item(), rel=1e-6)
    torch.testing.assert_close(l1 - l0, expected)  # the caption loss plus the weighted auxiliary one
    torch.testing.assert_close(l2 - l0, 2 * expected)
    # it trains: a few steps on three clips lower the auxiliary loss
    history = train_captioner(one, data, TextTrainConfig(steps=30, batch_size=3, lr=5e-3, warmup_steps=2),
                              progress=False)
    assert history[-1]["motion_loss"] < 0.6 * history[0]["motion_loss"]


def test_focal_loss_weighs_each_caption_token_by_how_wrong_the_model_is():
    from sora_mini.text.prompts import tokenize_prompts

    torch.manual_seed(0)
    data = CaptionedVideos(2, seed=5, sizes=((32, 32),), frames=(5,), max_objects=1)
    batch = data.items(range(2))
    cfg = CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2)
    plain, focal = VideoCaptioner(cfg), VideoCaptioner(dataclasses.replace(cfg, focal_gamma=2.0))
    focal.load_state_dict(plain.state_dict())
    with torch.no_grad():
        ids, mask = tokenize_prompts(plain.tokenizer, batch["detailed"], cfg.max_length)
        logits = plain.logits(plain.memory(batch["video"]), ids, mask)[:, :-1]
        logp = logits.log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0][mask[:, 1:]]  # each real next token
        torch.testing.assert_close(plain.loss(batch["video"], batch["detailed"])[0], -logp.mean())
        expected = (-(1 - logp.exp()) ** 2 * logp).mean()
        torch.testing.assert_close(focal.loss(batch["video"], batch["detailed"])[0], expected)
    assert expected < -logp.mean()  # every token weighs less than 1, the sure ones least
    with pytest.raises(ValueError, match="focal_gamma"):
        CaptionerConfig(focal_gamma=-1.0)


def test_attention_over_the_video_tokens_lets_the_first_frame_see_the_last():
    torch.manual_seed(0)
    cfg = CaptionerConfig(video_channels=(8, 16), hidden_size=32, layers=1, heads=2, video_positions=2)
    plain, attending = VideoCaptioner(cfg), VideoCaptioner(dataclasses.replace(cfg, video_attention_layers=1))
    video = torch.rand(2, 3, 9, 16, 16) * 2 - 1
    assert attending.memory(video).shape == plain.memory(video).shape == (2, 9 * 4 * 4, 32)
    tokens = plain.video(video)[0]
    later = tokens.clone()
    later[:, -1] += 1.0  # one token of the last frame changes
    for model, sees in ((plain, False), (attending, True)):
        with torch.no_grad():
            a, b = model.memory(video_tokens=tokens), model.memory(video_tokens=later)
        assert not torch.allclose(a[:, -1], b[:, -1])
        # each token alone is projected; only attention carries the change to the first frame's tokens
        assert torch.allclose(a[:, 0], b[:, 0]) is not sees
    with pytest.raises(ValueError, match="video_attention_layers"):
        CaptionerConfig(video_attention_layers=-1)


def test_turn_readings_count_each_turn_by_its_event_time_and_what_the_caption_says():
    from sora_mini.text.scoring import turn_readings
    from sora_mini.world.spec import DIRECTIONS

    data = CaptionedVideos(64, seed=3, sizes=((32, 32),), frames=(9,), max_objects=2)
    turns = [o for s in data.specs for o in s.objects if o.motion == "turn"]
    truth = turn_readings(data.detailed, data)
    assert {outcome for (_, outcome) in truth} == {"right"} and sum(truth.values()) == len(turns) > 2
    assert sorted(truth) == sorted({(o.event_time, "right") for o in turns})

    def captions(change):  # every turning object's caption changed by ``change``
        return [detailed_caption(dataclasses.replace(s, objects=tuple(
            change(o) if o.motion == "turn" else o for o in s.objects))) for s in data.specs]

    def another(o):  # a second direction that is neither of the turn's own
        return next(d for d in DIRECTIONS if d not in (o.direction, o.direction2))

    wrong = turn_readings(captions(lambda o: dataclasses.replace(o, direction2=another(o))), data)
    assert {outcome for (_, outcome) in wrong} == {"wrong"} and sum(wrong.values()) == len(turns)
    moves = captions(lambda o: dataclasses.replace(o, motion="move", direction2=None, event_time=None))
    said_move = turn_readings(moves, data)
    assert {outcome for (_, outcome) in said_move} == {"move"} and sum(said_move.values()) == len(turns)
    assert {outcome for (_, outcome) in turn_readings(["not a caption"] * len(data), data)} == {"other"}
    with pytest.raises(ValueError, match="one caption per video"):
        turn_readings(data.detailed[:-1], data)
