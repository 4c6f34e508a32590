"""The caption grammar: round trips for every kind of spec, partial prompts, and clear errors."""

import dataclasses

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
