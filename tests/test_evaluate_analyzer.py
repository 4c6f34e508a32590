"""The analyzer on hand-made frames: shapes drawn here (hard-edged or anti-aliased), own tracks."""

import numpy as np
import pytest

from sora_mini.evaluate.analyzer import VideoAnalyzer, region_name
from sora_mini.world.render import coverage
from sora_mini.world.spec import BACKGROUNDS, PALETTE


def hard_shape(shape, cx, cy, r, H, W):
    """A shape without anti-aliasing: pixel centres inside it -> [H, W] 0/1."""
    y, x = np.mgrid[0:H, 0:W] + 0.5
    if shape == "circle":
        return ((x - cx) ** 2 + (y - cy) ** 2 <= r * r).astype(float)
    if shape == "square":
        return ((np.abs(x - cx) <= r) & (np.abs(y - cy) <= r)).astype(float)
    return ((y <= cy + r) & (np.abs(x - cx) <= (y - (cy - r)) / 2)).astype(float)  # apex up


def paint(layers, H, W, bg="black"):
    """layers: (colour, alpha [T, H, W]) drawn in order -> uint8 video [T, H, W, 3]."""
    T = layers[0][1].shape[0]
    video = np.empty((T, H, W, 3), dtype=np.float64)
    video[:] = BACKGROUNDS[bg]
    for color, a in layers:
        video += (np.asarray(PALETTE[color], dtype=float) - video) * a[..., None]
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def smooth(shape, centers, r, H, W):
    centers = np.asarray(centers, dtype=float)
    return coverage(
        shape, centers, np.broadcast_to(np.asarray(r, dtype=float), len(centers)).copy(), H, W
    )


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
@pytest.mark.parametrize("r, size", [(5.0, "small"), (11.0, "large")])
def test_hard_edged_shapes_and_sizes(shape, r, size):
    H, W = 48, 64
    a = hard_shape(shape, 20.3, 30.6, r, H, W)[None]
    result = VideoAnalyzer().analyze(paint([("green", a)], H, W, "gray"))
    assert result.background == "gray"
    [obj] = result.objects
    assert (obj.color, obj.shape, obj.size) == ("green", shape, size)
    assert obj.motion.motion is None  # an image shows no motion


def test_region_names():
    assert region_name(5, 5, 60, 30) == "top left"
    assert region_name(30, 15, 60, 30) == "center"
    assert region_name(59, 29, 60, 30) == "bottom right"
    assert region_name(30, 2, 60, 30) == "top"


def test_straight_move_direction_speed_and_track():
    H, W, T = 40, 72, 9
    unit = 40
    v = np.array([0.05, -0.05]) * unit  # up right, |v| = 0.0707 * unit: quickly
    centers = np.array([12.0, 30.0]) + np.arange(T)[:, None] * v
    video = paint([("orange", smooth("square", centers, 5.0, H, W))], H, W, "navy")
    [obj] = VideoAnalyzer().analyze(video).objects
    att = obj.attributes()
    assert (att["motion"], att["direction"], att["speed"], att["region"]) == (
        "move",
        "up right",
        "quickly",
        "bottom left",
    )
    np.testing.assert_allclose(obj.center, centers, atol=0.05)
    np.testing.assert_allclose(obj.box[:, 2] - obj.box[:, 0], 10.0, atol=0.1)


def test_bounce_is_not_a_turn_but_a_reversal_midfield_is():
    H, W, T = 32, 32, 9
    r, speed = 4.0, 2.5
    # bounce: reaches the right wall (x = W - r) between frames 3 and 4 and mirrors back
    x = 20.0 + speed * np.arange(T)
    x = np.where(x > W - r, 2 * (W - r) - x, x)
    centers = np.stack([x, np.full(T, 16.0)], 1)
    [obj] = (
        VideoAnalyzer().analyze(paint([("red", smooth("circle", centers, r, H, W))], H, W)).objects
    )
    assert obj.motion.motion == "move"
    assert [e["wall"] for e in obj.motion.events if e["kind"] == "bounce"] == ["right"]
    # the same reversal in mid-field, away from any wall, is a turn at the frame it happens
    x = 8.0 + speed * np.minimum(np.arange(T), 4) - speed * np.maximum(np.arange(T) - 4, 0)
    centers = np.stack([x, np.full(T, 16.0)], 1)
    [obj] = (
        VideoAnalyzer().analyze(paint([("red", smooth("circle", centers, r, H, W))], H, W)).objects
    )
    assert (obj.motion.motion, obj.motion.direction2, obj.motion.event_frame) == ("turn", "left", 4)


def test_fall_fits_gravity():
    H, W, T = 48, 48, 9
    g = 0.5  # pixels / frame^2, not the world's value: the fit must find it
    centers = np.stack([np.full(T, 24.0), 8.0 + 0.5 * g * np.arange(T) ** 2], 1)
    [obj] = (
        VideoAnalyzer()
        .analyze(paint([("cyan", smooth("triangle", centers, 5.0, H, W))], H, W))
        .objects
    )
    assert obj.motion.motion == "fall"
    assert obj.motion.physics["gravity"] * 48 == pytest.approx(g, rel=0.02)


@pytest.mark.parametrize("factor, kind", [(1.6, "grow"), (1 / 1.6, "shrink"), (1.0, "still")])
def test_grow_shrink_still(factor, kind):
    H, W, T = 40, 40, 9
    r = 6.0 * (1 + (factor - 1) * np.arange(T) / (T - 1))
    a = smooth("circle", np.tile([20.0, 20.0], (T, 1)), r, H, W)
    [obj] = VideoAnalyzer().analyze(paint([("yellow", a)], H, W)).objects
    assert obj.motion.motion == kind


@pytest.mark.parametrize("kind, frame", [("appear", 3), ("disappear", 6)])
def test_appear_disappear_frame(kind, frame):
    H, W, T = 32, 32, 9
    a = smooth("square", np.tile([10.0, 20.0], (T, 1)), 4.0, H, W)
    t = np.arange(T)
    a *= ((t >= frame) if kind == "appear" else (t < frame))[:, None, None]
    [obj] = VideoAnalyzer().analyze(paint([("purple", a)], H, W)).objects
    assert (obj.motion.motion, obj.motion.event_frame) == (kind, frame)


def test_partly_hidden_object_keeps_its_shape_and_centre():
    """A circle half under a square drawn over it: still a circle, centre within 0.1 px."""
    H, W, T = 40, 40, 3
    circle_c = np.tile([15.0, 20.0], (T, 1))
    square_c = np.array([[24.0, 20.0], [23.0, 21.0], [22.0, 20.0]])
    video = paint(
        [
            ("blue", smooth("circle", circle_c, 7.0, H, W)),
            ("white", smooth("square", square_c, 7.0, H, W)),
        ],
        H,
        W,
    )
    objs = {o.color: o for o in VideoAnalyzer().analyze(video).objects}
    assert objs["blue"].shape == "circle" and objs["white"].shape == "square"
    assert objs["blue"].visible_fraction.max() < 0.8  # it really is partly hidden
    np.testing.assert_allclose(objs["blue"].center, circle_c, atol=0.1)


def test_blend_of_two_edges_is_not_an_object():
    """Red over yellow anti-aliased edges look orange: no orange object may be reported."""
    H, W = 40, 40
    video = paint(
        [
            ("yellow", smooth("square", [[20.0, 20.0]], 10.0, H, W)),
            ("red", smooth("circle", [[20.3, 20.6]], 6.0, H, W)),
        ],
        H,
        W,
    )
    assert sorted(o.color for o in VideoAnalyzer().analyze(video).objects) == ["red", "yellow"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="expected a video"):
        VideoAnalyzer().analyze(np.zeros((4, 8, 8)))
