"""The text-to-video recipe: frame masks, the compositional hold-out, packed batches, the loss."""

import pytest
import torch

from sora_mini.train.video import (
    MASK_STRATEGIES,
    LatentVideos,
    MaskRatios,
    VideoBatches,
    VideoDataConfig,
    VideoRecipe,
    combo_of,
    draw_strategy,
    flow_objective,
    frame_mask,
    holdout_combos,
    packed_flow_loss,
    temporal_pairs,
    time_shift,
    training_specs,
)
from sora_mini.world import COLORS, SHAPES


@pytest.mark.parametrize("strategy", MASK_STRATEGIES)
@pytest.mark.parametrize("grid", [(1, 4, 4), (2, 3, 5), (5, 4, 4), (9, 2, 2)])
def test_frame_mask_leaves_something_to_generate(strategy, grid):
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        given = frame_mask(strategy, grid, gen)
        assert given.shape == grid and given.dtype == torch.bool
        assert not bool(given.all())
        if strategy == "none":
            assert not bool(given.any())


def test_frame_mask_shapes_of_each_mode():
    gen = torch.Generator().manual_seed(1)
    head = frame_mask("head", (5, 2, 2), gen)
    assert head[0].all() and not head[1:].any()
    tail = frame_mask("tail_k", (5, 2, 2), gen)
    assert tail[-1].all() and not tail[0].any()
    both = frame_mask("head_tail", (6, 2, 2), gen)
    assert both[0].all() and both[-1].all() and not both[2:4].any()
    block = frame_mask("block", (3, 4, 4), gen)
    assert (block == block[0]).all()  # the same box in every frame
    assert frame_mask("interleaved", (5, 1, 1), gen).flatten().tolist() == [True, False, True, False, True]
    with pytest.raises(ValueError, match="unknown mask strategy"):
        frame_mask("sideways", (5, 2, 2), gen)


def test_images_only_draw_none_or_block():
    gen = torch.Generator().manual_seed(0)
    drawn = {draw_strategy(MaskRatios(block=0.5), True, gen) for _ in range(200)}
    assert drawn == {"none", "block"}
    videos = {draw_strategy(MaskRatios(), False, gen) for _ in range(2000)}
    assert videos == set(MASK_STRATEGIES)


def test_mask_ratios_must_be_probabilities():
    with pytest.raises(ValueError, match="sum to at most 1"):
        MaskRatios(head=0.9, head_k=0.5)
    assert abs(sum(MaskRatios().probabilities()) - 1) < 1e-9


def test_holdout_keeps_every_attribute_seen_and_training_avoids_it():
    held = holdout_combos(16, seed=0)
    assert len(held) == 16
    assert len({(c, s) for c, s, _ in held}) == 16  # one per (colour, shape) pair
    specs = training_specs(VideoDataConfig(videos=300))
    seen = [combo_of(o) for s in specs for o in s.objects]
    assert not set(seen) & held
    assert {c for c, _, _ in seen} == set(COLORS) and {s for _, s, _ in seen} == set(SHAPES)
    with pytest.raises(ValueError, match="at most"):
        holdout_combos(25)


def test_training_scenes_can_hold_one_kind_of_motion():
    specs = training_specs(VideoDataConfig(videos=40, max_objects=1, motions=("move",)))
    assert all(len(s.objects) == 1 and s.objects[0].motion == "move" for s in specs)
    assert not {combo_of(s.objects[0]) for s in specs} & holdout_combos(16, seed=0)  # the hold-out holds
    two = training_specs(VideoDataConfig(videos=10, max_objects=2, min_objects=2))
    assert all(len(s.objects) == 2 for s in two)
    with pytest.raises(ValueError, match="unknown motions"):
        VideoDataConfig(motions=("jump",))
    with pytest.raises(ValueError, match="min_objects"):
        VideoDataConfig(max_objects=1, min_objects=2)


def test_time_shift_grows_with_size_and_length():
    assert time_shift((1, 4, 4)) == pytest.approx(1.0)
    assert time_shift((9, 4, 4)) == pytest.approx(3.0)
    assert time_shift((1, 8, 8)) == pytest.approx(1.5)
    assert time_shift((9, 4, 4), 2.0) == 2.0


def _fake_videos(n=12, dim=6):
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 1, 4, 4), (4, 3, 4, 4), (4, 3, 4, 8)]
    latents = [torch.randn(shapes[i % 3], generator=gen).to(torch.bfloat16) for i in range(n)]
    text = torch.randn(n, 5, dim, generator=gen).to(torch.bfloat16)
    mask = torch.ones(n, 5, dtype=torch.bool)
    mask[::2, 3:] = False
    return LatentVideos(latents, [f"c{i}" for i in range(n)], text, mask,
                        torch.full((1, 2, dim), 7.0).to(torch.bfloat16), torch.ones(1, 2, dtype=torch.bool),
                        [(1, 16, 16)] * n)


def test_batches_are_deterministic_packed_and_drop_captions():
    videos = _fake_videos()
    batches = VideoBatches(videos, VideoRecipe(pack_length=32, tokens_per_step=60, caption_dropout=0.5), (1, 2, 2))
    a, b = batches(3), batches(3)
    for key in ("given", "t", "noise", "text", "text_mask"):
        assert torch.equal(a[key], b[key])
    assert torch.equal(a["packed"].tokens, b["packed"].tokens)
    packed = a["packed"]
    assert a["tokens"] >= 60 and packed.max_len == 32
    assert not bool((a["given"] & packed.padding).any())
    assert ((a["t"] >= 0) & (a["t"] <= 1)).all()
    dropped = [i for i in range(len(a["t"])) if torch.equal(a["text"][i, :2], torch.full((2, 6), 7.0))]
    assert dropped, "caption dropout 0.5 dropped nothing"
    assert not torch.equal(batches(4)["noise"].flatten()[:10], a["noise"].flatten()[:10])


def test_batches_refuse_examples_longer_than_a_row():
    with pytest.raises(ValueError, match="pack_length"):
        VideoBatches(_fake_videos(), VideoRecipe(pack_length=16), (1, 2, 2))


class _Echo(torch.nn.Module):
    """A model whose prediction is a learnable scalar times x: the loss must skip given tokens."""

    timestep_range = (0.0, 1000.0)

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(1.0))
        self.seen = None

    def forward(self, packed, t, *, x, cond, cond_given, text, text_mask):  # the loss calls model(packed, ...)
        self.seen = (t, cond_given)
        return self.w * x


def test_loss_leaves_given_and_padding_tokens_out():
    videos = _fake_videos()
    batch = VideoBatches(videos, VideoRecipe(pack_length=32, tokens_per_step=60), (1, 2, 2))(0)
    batch["given"] = batch["given"].clone()
    batch["given"][0, :4] = True
    model, loss_fn = _Echo(), packed_flow_loss(flow_objective(VideoRecipe()))
    loss, metrics = loss_fn(model, batch)
    assert model.seen[0].max() <= 1000 and model.seen[0].max() > 1  # on DiT's 0..1000 scale
    noisy = dict(batch, noise=batch["noise"].clone())
    noisy["noise"][batch["given"] | batch["packed"].padding] = 1e3  # only given / padding slots change
    assert torch.allclose(loss_fn(model, noisy)[0], loss)
    loss.backward()
    assert model.w.grad is not None and metrics["tokens"] == batch["tokens"]


def test_temporal_pairs_join_each_token_to_the_same_place_one_frame_later():
    batch = VideoBatches(_fake_videos(), VideoRecipe(pack_length=32, tokens_per_step=60), (1, 2, 2))(1)
    packed = batch["packed"]
    a, b = temporal_pairs(packed)
    seg, crd = packed.segment_ids.reshape(-1), packed.coords.reshape(-1, 3)
    assert torch.equal(seg[a], seg[b]) and bool((seg[a] >= 0).all())
    assert torch.equal(crd[b, 0], crd[a, 0] + 1) and torch.equal(crd[b, 1:], crd[a, 1:])
    grids = VideoBatches(_fake_videos(), VideoRecipe(), (1, 2, 2)).grids
    expected = sum((nt - 1) * nh * nw for nt, nh, nw in (grids[i] for i in batch["index"].tolist()))
    assert len(a) == expected > 0


class _Oracle(torch.nn.Module):
    """Predicts the true velocity plus ``offset(tokens' place)``: an error that is the same in
    every frame (no error in any frame-to-frame change), or ``per_frame`` errors that differ."""

    timestep_range = (0.0, 1000.0)

    def __init__(self, per_frame: bool):
        super().__init__()
        self.per_frame = per_frame

    def forward(self, packed, t, *, x, cond, cond_given, text, text_mask):
        tt = (t / 1000.0)[packed.segment_ids.clamp(min=0)][..., None]
        noise = (x - (1 - tt) * cond) / tt  # x_t = (1 - t) x0 + t noise, and cond holds x0
        place = packed.coords[..., 1:].float().sum(-1, keepdim=True)
        if self.per_frame:
            place = place + packed.coords[..., :1].float()
        return noise - cond + 0.1 * place


def test_motion_weight_adds_only_the_error_of_frame_to_frame_changes():
    batch = VideoBatches(_fake_videos(), VideoRecipe(pack_length=32, tokens_per_step=60), (1, 2, 2))(2)
    batch["t"] = batch["t"].clamp(min=0.2)  # the oracle divides by t
    objective = flow_objective(VideoRecipe())
    plain, weighted = packed_flow_loss(objective), packed_flow_loss(objective, motion_weight=2.0)
    still = _Oracle(per_frame=False)  # wrong everywhere, but wrong alike in every frame
    assert float(plain(still, batch)[0]) > 0.01
    torch.testing.assert_close(weighted(still, batch)[0], plain(still, batch)[0])
    assert weighted(still, batch)[1]["motion_loss"] < 1e-8
    moving = _Oracle(per_frame=True)  # its error grows by 0.1 a frame: every change is 0.1 off
    loss, metrics = weighted(moving, batch)
    packed = batch["packed"]
    a, b = temporal_pairs(packed)
    gen = (packed.valid & ~batch["given"]).reshape(-1)
    pairs = int((gen[a] & gen[b]).sum())
    count = int(gen.sum()) * packed.tokens.shape[-1]
    expected = pairs * packed.tokens.shape[-1] * 0.1 ** 2 / count  # each changed channel off by 0.1
    assert pairs > 0
    torch.testing.assert_close(torch.tensor(metrics["motion_loss"]), torch.tensor(expected), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(loss, plain(moving, batch)[0] + 2.0 * expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="motion_weight"):
        VideoRecipe(motion_weight=-1.0)
