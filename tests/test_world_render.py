"""The renderer: sizes, determinism, anti-aliasing, physics and events, read from annotations and pixels."""

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sora_mini.world import Annotations, ObjectSpec, SceneSpec, event_frame, render, sample_spec
from sora_mini.world.render import coverage
from sora_mini.world.spec import (
    BACKGROUNDS,
    DIRECTIONS,
    GRAVITY,
    GROW_FACTOR,
    MIN_SIZE,
    PALETTE,
    RESTITUTION,
    SIZES,
    SPEEDS,
)


def one(**kw) -> SceneSpec:
    return SceneSpec(objects=[ObjectSpec(**{"shape": "circle", "color": "red", **kw})]).validate()


def object_mask(video, color, tol=60):
    """Pixels close to an object colour: ``[T, H, W]`` bool."""
    return (np.abs(video.astype(int) - np.array(PALETTE[color])).sum(-1) < tol)


# ---- sizes, determinism ---------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), h=st.integers(MIN_SIZE, 48), w=st.integers(MIN_SIZE, 48),
       t=st.integers(1, 6))
def test_any_size_and_duration(seed, h, w, t):
    spec = sample_spec(seed)
    video, ann = render(spec, h, w, t)
    assert video.shape == (t, h, w, 3) and video.dtype == np.uint8
    assert (ann.height, ann.width, ann.frames) == (h, w, t)
    for o in ann.objects:
        assert o.box.shape == (t, 4) and o.center.shape == (t, 2) and o.visible.shape == (t,)
        box = o.box
        assert (box[:, 0] >= -1e-6).all() and (box[:, 1] >= -1e-6).all()  # whole shape in the frame
        assert (box[:, 2] <= w + 1e-6).all() and (box[:, 3] <= h + 1e-6).all()
    assert all(0 <= e.frame < t for e in ann.events)


def test_deterministic():
    spec = sample_spec(7)
    a, ann_a = render(spec, 32, 48, 9)
    b, ann_b = render(SceneSpec.from_json(spec.to_json()), 32, 48, 9)
    assert np.array_equal(a, b)
    assert ann_a.to_dict() == ann_b.to_dict()


def test_image_is_first_frame():
    """T=1 is an image: every object drawn at its start, no events."""
    for seed in range(20):
        spec = sample_spec(seed)
        img, ann = render(spec, 32, 40, 1)
        assert ann.events == [] and all(o.visible.all() for o in ann.objects)
        if all(o.motion != "appear" for o in spec.objects):
            assert np.array_equal(img[0], render(spec, 32, 40, 9)[0][0])


@pytest.mark.parametrize("hw", [(36, 64), (64, 36), (32, 32), (32, 64)])  # 16:9, 9:16, 1:1, 2:1
def test_aspect_ratios_keep_fractions(hw):
    h, w = hw
    spec = one(size="large", region="top left", offset=(0.1, 0.1))
    video, ann = render(spec, h, w, 1)
    o = ann.objects[0]
    assert o.center[0] == pytest.approx([spec.objects[0].start_xy[0] * w, spec.objects[0].start_xy[1] * h])
    assert o.half_extent[0] == pytest.approx(SIZES["large"] * min(h, w))
    ys, xs = np.nonzero(object_mask(video, "red")[0])
    assert xs.mean() + 0.5 == pytest.approx(o.centroid[0, 0], abs=0.5)  # drawn where annotated
    assert ys.mean() + 0.5 == pytest.approx(o.centroid[0, 1], abs=0.5)


# ---- anti-aliasing ---------------------------------------------------------------------------
@pytest.mark.parametrize("shape,area", [("circle", math.pi), ("square", 4.0), ("triangle", 2.0)])
def test_coverage_is_anti_aliased_and_measures_area(shape, area):
    r = 6.3
    cov = coverage(shape, np.array([[15.37, 16.81]]), np.array([r]), 32, 32)
    edge = (cov > 0.02) & (cov < 0.98)
    assert edge.sum() > 8  # soft edge pixels, not a hard 0/1 mask
    assert cov.sum() == pytest.approx(area * r * r, rel=0.03)


def test_rendered_edges_have_intermediate_colours():
    video, _ = render(one(shape="circle", color="white"), 32, 32, 1)
    values = np.unique(video[..., 0])
    assert ((values > 10) & (values < 235)).any()


def test_later_objects_are_drawn_on_top():
    spec = SceneSpec(objects=[ObjectSpec("square", "blue", "large"), ObjectSpec("circle", "yellow", "small")])
    video, ann = render(spec.validate(), 32, 32, 1)
    assert tuple(video[0, 16, 16]) == PALETTE["yellow"]
    assert ann.objects[0].visible_fraction[0] < 0.9 and ann.objects[1].visible_fraction[0] == pytest.approx(1.0)


# ---- physics ---------------------------------------------------------------------------------
def test_move_constant_velocity_and_reflection_at_walls():
    h, w, t = 32, 48, 60
    spec = one(size="small", region="center", motion="move", direction="down right", speed="quickly")
    video, ann = render(spec, h, w, t)
    o = ann.objects[0]
    unit, r = min(h, w), SIZES["small"] * min(h, w)
    v = np.array(DIRECTIONS["down right"]) * SPEEDS["quickly"] * unit
    bounces = ann.events_of("bounce")
    assert {e.wall for e in bounces} == {"left", "right", "top", "bottom"}
    crossing = {e.frame for e in bounces}  # the step into these frames straddles a bounce
    steps = np.diff(o.center, axis=0)
    for f in range(1, t):
        if f not in crossing:
            assert np.abs(steps[f - 1]) == pytest.approx(np.abs(v), abs=1e-6)
    for e in bounces:  # touching the wall at the bounce time, velocity reflected across it
        axis = 0 if e.wall in ("left", "right") else 1
        wall = r if e.wall in ("left", "top") else (w, h)[axis] - r
        before, after = o.velocity[e.frame - 1, axis], o.velocity[e.frame, axis]
        assert before == pytest.approx(-after)
        assert (after > 0) == (e.wall in ("left", "top"))
        assert o.center[e.frame, axis] == pytest.approx(wall + after * (e.frame - e.time), abs=1e-6)
    assert (o.box[:, :2] >= -1e-9).all() and (o.box[:, 2] <= w + 1e-9).all() and (o.box[:, 3] <= h + 1e-9).all()
    # the pixels follow the annotation
    _, xs = np.nonzero(object_mask(video, "red")[-1])
    assert xs.mean() + 0.5 == pytest.approx(o.centroid[-1, 0], abs=0.5)


def test_fall_is_a_parabola_then_bounces_lower():
    h, w, t = 48, 32, 40
    spec = one(shape="square", region="top", motion="fall")
    _, ann = render(spec, h, w, t)
    o, g = ann.objects[0], GRAVITY * min(h, w)
    y = o.center[:, 1]
    bounces = ann.events_of("bounce")
    assert bounces and all(e.wall == "bottom" for e in bounces)
    first = bounces[0].time
    n = math.floor(first)  # frames 0..n are before the first ground contact
    assert o.velocity[0, 1] == 0 and np.diff(y[: n + 1], 2) == pytest.approx(np.full(n - 1, g))
    ground = h - SIZES["small"] * min(h, w)
    assert y.max() <= ground + 1e-6
    # after the bounce: upward at RESTITUTION x the impact speed, decelerating at g
    f = bounces[0].frame
    impact = g * first
    assert o.velocity[f, 1] == pytest.approx(-RESTITUTION * impact + g * (f - first))
    apex = y[f: bounces[1].frame].min() if len(bounces) > 1 else y[f:].min()
    assert apex > y[0]  # bounces never climb back to the start height
    assert np.diff([e.time for e in bounces]).tolist() == sorted(np.diff([e.time for e in bounces]), reverse=True)


def test_turn_switches_direction_at_event_keeping_speed():
    t = 17
    spec = one(region="center", motion="turn", direction="right", speed="slowly",
               direction2="up", event_time="halfway through")
    _, ann = render(spec, 32, 32, t)
    o, e = ann.objects[0], event_frame("halfway through", t)
    assert [ev.frame for ev in ann.events_of("turn")] == [e]
    speed = SPEEDS["slowly"] * 32
    assert o.velocity[:e] == pytest.approx(np.tile([speed, 0], (e, 1)))
    assert o.velocity[e:] == pytest.approx(np.tile([0, -speed], (t - e, 1)))
    assert np.diff(o.center[e:, 1]) == pytest.approx(np.full(t - e - 1, -speed))


@pytest.mark.parametrize("motion,factor", [("grow", GROW_FACTOR), ("shrink", 1 / GROW_FACTOR)])
def test_grow_and_shrink_scale_linearly(motion, factor):
    video, ann = render(one(shape="square", motion=motion), 32, 32, 9)
    r = ann.objects[0].half_extent
    assert r[-1] / r[0] == pytest.approx(factor) and np.diff(r, 2) == pytest.approx(np.zeros(7), abs=1e-9)
    area = video[..., 0].astype(float).sum(axis=(1, 2))  # red on black: proportional to covered area
    assert (np.diff(area) > 0).all() if motion == "grow" else (np.diff(area) < 0).all()


@pytest.mark.parametrize("motion", ["appear", "disappear"])
@pytest.mark.parametrize("t", [2, 5, 9, 16])
def test_appear_and_disappear_at_event_frame(motion, t):
    video, ann = render(one(motion=motion, event_time="early"), 32, 32, t)
    e = event_frame("early", t)
    assert [(ev.kind, ev.frame) for ev in ann.events] == [(motion, e)]
    drawn = object_mask(video, "red").any(axis=(1, 2))
    expect = np.arange(t) >= e if motion == "appear" else np.arange(t) < e
    assert (drawn == expect).all() and (ann.objects[0].visible == expect).all()


def test_event_frame_rounds_and_stays_inside():
    assert event_frame("late", 1) is None
    for t in range(2, 40):
        for name, frac in (("early", 0.25), ("halfway through", 0.5), ("late", 0.75)):
            e = event_frame(name, t)
            assert 1 <= e <= t - 1
            if t > 2:  # rounded to the nearest frame (t == 2 has only frame 1 to choose)
                assert abs(e - frac * (t - 1)) <= 0.5


def test_still_objects_do_not_move():
    spec = one(motion="still", region="bottom right")
    video, ann = render(spec, 32, 32, 6)
    assert (ann.objects[0].center == ann.objects[0].center[0]).all()
    assert (video == video[0]).all()


# ---- errors and serialisation ----------------------------------------------------------------
@pytest.mark.parametrize("h,w,t,word", [(8, 32, 4, "height 8"), (32, 15, 4, "width 15"),
                                        (32, 32, 0, "frames 0")])
def test_bad_sizes_are_clear_errors(h, w, t, word):
    with pytest.raises(ValueError, match=word) as err:
        render(sample_spec(0), h, w, t)
    assert str(MIN_SIZE) in str(err.value) or "frames" in word
    with pytest.raises(TypeError, match="height must be an integer"):
        render(sample_spec(0), 32.0, 32, 4)


def test_unknown_words_and_bad_json_are_clear_errors():
    with pytest.raises(ValueError, match="colour 'pink'.*red"):
        render(SceneSpec([ObjectSpec("circle", "pink")]), 32, 32, 1)
    with pytest.raises(ValueError, match="shape 'hexagon'"):
        SceneSpec([ObjectSpec("hexagon", "red")]).validate()
    with pytest.raises(ValueError, match="malformed"):
        SceneSpec.from_json("{not json")
    with pytest.raises(ValueError, match="objects"):
        SceneSpec.from_json("[1, 2]")
    with pytest.raises(TypeError, match="SceneSpec"):
        render({"objects": []}, 32, 32, 1)


def test_json_round_trips():
    for seed in range(30):
        spec = sample_spec(seed)
        assert SceneSpec.from_json(spec.to_json()) == spec
        _, ann = render(spec, 32, 48, 7)
        back = Annotations.from_dict(json.loads(json.dumps(ann.to_dict())))
        assert back.to_dict() == ann.to_dict()
        assert set(BACKGROUNDS) >= {spec.background}
