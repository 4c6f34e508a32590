"""The caption grammar: round trips for every kind of spec, partial prompts, and clear errors."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mini.world import spec as V
from sora_mini.world.captions import (
    ATTRIBUTES,
    SHORT_ATTRIBUTES,
    CaptionError,
    CaptionObject,
    caption_attributes,
    detailed_caption,
    parse_caption,
    short_caption,
)


@st.composite
def object_specs(draw, color):
    motion = draw(st.sampled_from(V.MOTIONS))
    kw = {
        "shape": draw(st.sampled_from(V.SHAPES)),
        "color": color,
        "size": draw(st.sampled_from(list(V.SIZES))),
        "region": draw(st.sampled_from(list(V.REGIONS))),
        "motion": motion,
    }
    if motion in ("move", "turn"):
        kw["direction"] = draw(st.sampled_from(list(V.DIRECTIONS)))
        kw["speed"] = draw(st.sampled_from(list(V.SPEEDS)))
    if motion == "turn":
        kw["direction2"] = draw(st.sampled_from([d for d in V.DIRECTIONS if d != kw["direction"]]))
    if motion in ("appear", "disappear", "turn"):
        kw["event_time"] = draw(st.sampled_from(list(V.EVENT_TIMES)))
    return V.ObjectSpec(**kw)


@st.composite
def scene_specs(draw):
    n = draw(st.integers(1, V.MAX_OBJECTS))
    colors = draw(st.lists(st.sampled_from(list(V.PALETTE)), min_size=n, max_size=n, unique=True))
    objs = [draw(object_specs(c)) for c in colors]
    return V.SceneSpec(
        objects=objs, background=draw(st.sampled_from(list(V.BACKGROUNDS)))
    ).validate()


@settings(max_examples=1500, deadline=None)
@given(scene_specs())
def test_round_trip_both_kinds(spec):
    full = caption_attributes(spec)
    assert parse_caption(detailed_caption(spec)) == full
    short = parse_caption(short_caption(spec))
    assert short == caption_attributes(spec, "short")
    # the short caption states exactly its attributes, and they agree with the full set
    for s, f in zip(short.objects, full.objects):
        assert set(s.stated()) == {a for a in SHORT_ATTRIBUTES if getattr(f, a) is not None}
    # to_scene_spec of a detailed caption renders the same caption
    assert detailed_caption(full.to_scene_spec()) == detailed_caption(spec)


def test_round_trip_sampled_world_specs():
    sample_spec = pytest.importorskip("sora_mini.world.sample").sample_spec
    for seed in range(500):
        spec = sample_spec(seed)
        assert parse_caption(detailed_caption(spec)) == caption_attributes(spec)
        assert parse_caption(short_caption(spec)) == caption_attributes(spec, "short")


def test_short_caption_examples():
    red = V.ObjectSpec("circle", "red", motion="move", direction="right", speed="slowly")
    assert short_caption(V.SceneSpec([red])) == "a red circle moves right"
    turn = dataclasses.replace(red, motion="turn", direction2="up", event_time="early")
    assert short_caption(V.SceneSpec([turn])) == "a red circle moves right, then up"
    orange = V.ObjectSpec("square", "orange", motion="fall")
    assert (
        short_caption(V.SceneSpec([red, orange]))
        == "a red circle moves right and an orange square falls"
    )


def test_detailed_caption_states_every_attribute():
    o = V.ObjectSpec(
        "triangle", "cyan", "large", "bottom left", "turn", "up right", "quickly", "down", "late"
    )
    text = detailed_caption(V.SceneSpec([o], background="navy"))
    for word in (
        "large",
        "cyan",
        "triangle",
        "bottom left",
        "up right",
        "quickly",
        "down",
        "late",
        "navy",
    ):
        assert word in text


def test_partial_prompts_state_only_what_they_say():
    c = parse_caption("A big blue square on the left moves up fast, on a grey background")
    assert c.background == "gray"
    assert c.objects == (
        CaptionObject(
            shape="square",
            color="blue",
            size="large",
            region="left",
            motion="move",
            direction="up",
            speed="quickly",
        ),
    )
    # "left" is a region after "on the" and a direction after "moves"
    c = parse_caption("a red circle at the right moves left")
    assert (c.objects[0].region, c.objects[0].direction) == ("right", "left")
    assert parse_caption("a green triangle").objects[0].stated() == {
        "shape": "triangle",
        "color": "green",
    }
    assert len(parse_caption("a red circle falls and a blue square grows").objects) == 2


def test_partial_prompt_fills_to_a_valid_spec():
    spec = parse_caption("a circle moves left and a red square").to_scene_spec()
    assert [o.color for o in spec.objects][1] == "red" and spec.objects[0].color != "red"
    assert spec.objects[0].direction == "left"


@pytest.mark.parametrize(
    "text, bad",
    [
        ("a red dog runs", ["dog", "runs"]),
        ("a magenta circle", ["magenta"]),
        ("the background is pink and a red circle", ["pink"]),
        ("a red circle moves 3 pixels", ["3", "pixels"]),
    ],
)
def test_unknown_words_are_named_with_the_vocabulary(text, bad):
    with pytest.raises(CaptionError) as e:
        parse_caption(text)
    msg = str(e.value)
    for w in bad:
        assert repr(w) in msg
    assert "circle" in msg and "halfway through" in msg  # the vocabulary is listed
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    "text", ["", "a red moves right", "the background is black", "a red circle moves right, then"]
)
def test_known_words_in_a_broken_order_raise(text):
    with pytest.raises(CaptionError):
        parse_caption(text)


def test_attribute_names_match_object_spec():
    fields = {f.name for f in dataclasses.fields(V.ObjectSpec)}
    assert set(ATTRIBUTES) <= fields


# ---- caption -> scene: unstated attributes drawn from the seed, by the sampler's placement rule --
def _boxes_apart(ann) -> bool:
    boxes = [o.box[0] for o in ann.objects]
    return all(min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
               for i, a in enumerate(boxes) for b in boxes[:i])


def test_a_moving_prompt_starts_with_room_to_move_that_way():
    from sora_mini.world import render, start_regions

    caption = parse_caption("a red circle moves right")
    starts = set()
    for seed in range(100):
        spec = caption.to_scene_spec(seed)
        (o,) = spec.objects
        assert (o.color, o.shape, o.motion, o.direction) == ("red", "circle", "move", "right")
        assert o.region in start_regions("move", "right", o.size), (seed, o)
        for h, w in ((32, 32), (36, 64), (64, 36)):
            _, ann = render(spec, h, w, 9)
            track = ann.objects[0]
            unit, (x, y) = min(h, w), o.start_xy
            r = V.SIZES[o.size] * unit  # the start box (before the renderer's clipping) is inside
            assert r <= x * w <= w - r and r <= y * h <= h - r, (seed, h, w)
            box = track.box[:3]
            assert (box[:, :2] >= 0).all() and (box[:, 2] <= w).all() and (box[:, 3] <= h).all()
            step = np.diff(track.center[:2], axis=0)[0]  # the first step goes right, not a bounce
            assert step[0] > 0 and step[1] == 0, (seed, h, w)
        starts.add((o.region, o.offset, o.size, o.speed))
    assert len(starts) > 50  # the seed draws the unstated attributes, not one default


@pytest.mark.parametrize("text", [
    "a red circle moves right and a blue square falls",
    "a green triangle and a yellow circle",
    "a red circle grows and a large blue square moves down",
    "a red circle, a blue square and a green triangle",
])
def test_objects_of_a_prompt_do_not_start_on_top_of_each_other(text):
    from sora_mini.world import render

    caption = parse_caption(text)
    for seed in range(40):
        spec = caption.to_scene_spec(seed)
        assert len(spec.objects) == len(caption.objects)
        for o, c in zip(spec.objects, caption.objects):  # stated attributes kept
            assert {a: getattr(o, a) for a in c.stated()} == c.stated()
        assert len({o.region for o in spec.objects}) == len(spec.objects)
        _, ann = render(spec, 36, 64, 1)
        assert _boxes_apart(ann), (seed, spec)


def test_stated_attributes_win_even_against_the_placement_rule():
    spec = parse_caption("a red circle at the right moves right quickly and a blue square at the "
                         "right falls, on a navy background").to_scene_spec(3)
    red, blue = spec.objects
    assert (red.region, red.direction, red.speed) == ("right", "right", "quickly")
    assert (blue.region, blue.motion, spec.background) == ("right", "fall", "navy")
    assert parse_caption("a large circle at the top left grows").to_scene_spec(0).objects[0].region \
        == "top left"


def test_to_scene_spec_is_seeded_and_says_when_a_caption_has_too_many_objects():
    c = parse_caption("a circle falls and a square")
    assert c.to_scene_spec(5) == c.to_scene_spec(5)
    assert c.to_scene_spec(5).seed == 5
    with pytest.raises(CaptionError, match="1 to 3 objects; this caption describes 4"):
        parse_caption("a circle, a square, a triangle and a red circle").to_scene_spec()
