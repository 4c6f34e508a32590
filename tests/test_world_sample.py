"""Scene sampling: deterministic, valid, readable (apart, inside the frame, room to move), fixable."""

import dataclasses
import hashlib

import numpy as np
import pytest

from sora_mini.world import render, sample_spec, sample_specs, spec_seed, start_regions
from sora_mini.world.spec import DIRECTIONS, MOTIONS, REGIONS, SceneSpec

SEEDS = range(300)


def test_same_seed_same_spec_and_variety():
    assert sample_spec(11) == sample_spec(11)
    specs = [sample_spec(s) for s in SEEDS]
    assert len({s.to_json() for s in specs}) == len(specs)
    counts = {len(s.objects) for s in specs}
    assert counts == {1, 2, 3}
    assert {o.motion for s in specs for o in s.objects} == set(MOTIONS)


def test_specs_are_valid_with_distinct_colours_and_regions():
    for s in SEEDS:
        spec = sample_spec(s)
        SceneSpec.from_json(spec.to_json())  # validates
        assert len({o.color for o in spec.objects}) == len(spec.objects)
        assert len({o.region for o in spec.objects}) == len(spec.objects)
        for o in spec.objects:  # the start stays in its region's third of the frame
            cx, cy = REGIONS[o.region]
            x, y = o.start_xy
            assert abs(x - cx) <= 1 / 6 and abs(y - cy) <= 1 / 6


@pytest.mark.parametrize("hw", [(32, 32), (36, 64), (64, 36), (16, 32)])
def test_objects_start_apart_and_inside_the_frame(hw):
    h, w = hw
    for s in range(150):
        _, ann = render(sample_spec(s), h, w, 1)
        boxes = [o.box[0] for o in ann.objects]
        for b in boxes:
            assert b[0] >= 0 and b[1] >= 0 and b[2] <= w and b[3] <= h
        for i in range(len(boxes)):
            for j in range(i):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
                assert not overlap, (s, hw)


def test_growing_objects_stay_inside():
    for s in range(200):
        spec = sample_spec(s, motions=["grow"])
        _, ann = render(spec, 32, 64, 9)
        for o in ann.objects:
            assert (o.box[:, :2] >= -1e-9).all() and (o.box[:, 2] <= 64 + 1e-9).all()
            assert (o.box[:, 3] <= 32 + 1e-9).all()


def test_moving_objects_start_away_from_walls_and_fallers_have_room():
    for s in range(200):
        spec = sample_spec(s, motions=["move", "turn", "fall"])
        _, ann = render(spec, 32, 32, 9)
        for i, o in enumerate(spec.objects):
            first = ann.events_of("bounce", object=i)
            assert not first or first[0].time > 1.0  # no bounce in the very first step
            if o.motion == "fall":
                assert REGIONS[o.region][1] < 0.7
            for d in (o.direction, o.direction2):  # never straight into a wall it starts next to
                if d is not None:
                    (cx, cy), (dx, dy) = REGIONS[o.region], DIRECTIONS[d]
                    assert not (dx < 0 and cx < 0.3 or dx > 0 and cx > 0.7)
                    assert not (dy < 0 and cy < 0.3 or dy > 0 and cy > 0.7)


def test_motion_filter_and_object_count():
    for s in range(50):
        spec = sample_spec(s, motions=["still", "fall"], max_objects=2)
        assert 1 <= len(spec.objects) <= 2
        assert {o.motion for o in spec.objects} <= {"still", "fall"}
    assert len(sample_spec(3, min_objects=3).objects) == 3


def test_sample_specs_matches_per_index_seeds():
    specs = sample_specs(5, seed=4)
    assert specs == [sample_spec(spec_seed(4, i)) for i in range(5)]
    assert specs != sample_specs(5, seed=5)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="fly"):
        sample_spec(0, motions=["fly"])
    with pytest.raises(ValueError, match="max_objects"):
        sample_spec(0, max_objects=4)
    with pytest.raises(ValueError, match="seed"):
        sample_spec(-1)
    assert isinstance(np.int64(3), np.integer) and sample_spec(np.int64(3)) == sample_spec(3)


# ---- the same specs as before `fix` existed ------------------------------------------------------
# Frozen from the sampler at commit b6527fe (before `fix` was added): every figure of the project
# depends on these scenes, so sampling without `fix` must give them byte for byte.
FROZEN = {
    0: '{"background": "gray", "extra": {}, "objects": [{"color": "cyan", "direction": "left", "direction2": "up right", "event_time": "early", "motion": "turn", "offset": [-0.0284, -0.0851], "region": "bottom", "shape": "square", "size": "large", "speed": "slowly"}, {"color": "red", "direction": null, "direction2": null, "event_time": null, "motion": "fall", "offset": [0.0881, 0.091], "region": "top left", "shape": "circle", "size": "small", "speed": null}], "seed": 0}',
    1: '{"background": "gray", "extra": {}, "objects": [{"color": "green", "direction": "right", "direction2": null, "event_time": null, "motion": "move", "offset": [0.0303, -0.0869], "region": "bottom", "shape": "square", "size": "large", "speed": "quickly"}], "seed": 1}',
    42: '{"background": "gray", "extra": {}, "objects": [{"color": "green", "direction": null, "direction2": null, "event_time": null, "motion": "grow", "offset": [0.0353, 0.0965], "region": "top", "shape": "circle", "size": "small", "speed": null}, {"color": "red", "direction": null, "direction2": null, "event_time": null, "motion": "still", "offset": [-0.0559, -0.0313], "region": "bottom", "shape": "triangle", "size": "small", "speed": null}, {"color": "orange", "direction": null, "direction2": null, "event_time": null, "motion": "still", "offset": [-0.0632, -0.0688], "region": "bottom right", "shape": "circle", "size": "small", "speed": null}], "seed": 42}',
}
# sha256 of the concatenated `to_json(sort_keys=True)` of many specs, same commit
FROZEN_DIGESTS = [
    ("30e8501d010dc1946fb5513a3017422dd36ad9af4a6aef782f333ae3e3b81b75", range(1000), {}),
    ("1ef72602b02b7144947e7cd4419ffb6288afebf6aee659f631372d1b0d5fc6bd", range(300),
     {"motions": ["move", "turn", "fall"]}),
    ("14630256b6c2542d5f5e2fc7a4374a2acbaba85c53f184f95272e729304ae1fb", range(300),
     {"max_objects": 2, "motions": ["still", "fall"]}),
    ("0dc927cfcfce2d2e4dd84d1a6579b3a94de25968edaa23e63a2e3bf7c9d84b1c", range(300), {"min_objects": 3}),
]


def test_sampling_without_fix_gives_the_frozen_specs():
    for seed, text in FROZEN.items():
        assert sample_spec(seed).to_json(sort_keys=True) == text
        assert sample_spec(seed, fix=None).to_json(sort_keys=True) == text
    for digest, seeds, kw in FROZEN_DIGESTS:
        h = hashlib.sha256()
        for s in seeds:
            h.update(sample_spec(s, **kw).to_json(sort_keys=True).encode())
        assert h.hexdigest() == digest, kw
    h = hashlib.sha256()
    for s in sample_specs(200, seed=7):
        h.update(s.to_json(sort_keys=True).encode())
    assert h.hexdigest() == "d08c2f50e9bff51556848d0b42fbbae724ebf605a3257c85fb00312a8143a468"


# ---- fixing attributes ---------------------------------------------------------------------------
def _assert_readable(spec):
    """What the sampler guarantees: valid starts, distinct regions, boxes apart at frame 0."""
    spec.validate()
    assert len({o.region for o in spec.objects}) == len(spec.objects)
    for o in spec.objects:
        d2 = o.direction2 if o.motion == "turn" else None
        assert o.region in start_regions(o.motion, o.direction, o.size, d2), o
    _, ann = render(spec, 36, 64, 1)
    boxes = [o.box[0] for o in ann.objects]
    for i in range(len(boxes)):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), spec


FIXES = [
    {"color": "red", "motion": "move", "direction": "right"},
    {"direction": "down left"},  # implies a moving motion and a start with room down and left
    {"direction2": "up"},  # implies a turn
    {"event_time": "late"},  # implies appear, disappear or turn
    {"motion": "fall", "size": "large"},
    {"region": "bottom right", "shape": "triangle"},
    {"motion": "grow", "size": "large"},  # fits only in the centre
    {"motion": "turn", "direction": "up", "direction2": "left", "speed": "quickly"},
    {"region": "left", "offset": (0.05, -0.02), "background": None},  # None = not fixed
]


@pytest.mark.parametrize("fix", FIXES, ids=[str(f) for f in FIXES])
def test_fixed_attributes_are_kept_and_the_rest_drawn_validly(fix):
    fixed = {k: v for k, v in fix.items() if v is not None}
    drawn = set()
    for s in range(60):
        spec = sample_spec(s, fix=fix)
        first = spec.objects[0]
        for k, v in fixed.items():
            assert getattr(first, k) == v, (s, k)
        if "direction" in fix or "direction2" in fix:
            assert first.motion in ({"turn"} if "direction2" in fix else {"move", "turn"})
        if "event_time" in fix:
            assert first.motion in ("appear", "disappear", "turn")
        _assert_readable(spec)
        drawn.add(tuple(getattr(first, a) for a in ("shape", "size", "region", "motion", "offset")))
    assert len(drawn) > 10  # the unfixed attributes still vary with the seed


def test_fix_per_object_and_at_least_that_many_objects():
    fix = [{"color": "blue", "motion": "fall"}, {"color": "red", "direction": "up"}]
    for s in range(60):
        spec = sample_spec(s, fix=fix)
        assert len(spec.objects) >= 2
        assert (spec.objects[0].color, spec.objects[0].motion) == ("blue", "fall")
        assert (spec.objects[1].color, spec.objects[1].direction) == ("red", "up")
        _assert_readable(spec)
    assert all(len(sample_spec(s, fix=[{}, {}, {}]).objects) == 3 for s in range(20))


def test_a_fix_changes_little_else():
    """Shape and colour take no part in placement: fixing them leaves the rest of the seed's scene."""
    for s in range(100):
        base = sample_spec(s)
        spec = sample_spec(s, fix={"shape": "triangle", "color": "white"})
        expect = [dataclasses.replace(o) for o in base.objects]
        expect[0].shape = "triangle"
        old = expect[0].color
        for o in expect[1:]:  # an object that had the fixed colour gets the first object's old one
            if o.color == "white":
                o.color = old
        expect[0].color = "white"
        assert spec.objects == expect, s


@pytest.mark.parametrize("fix, message", [
    ({"colour": "red"}, "unknown attribute 'colour'; allowed: shape, color, size"),
    ({"color": "pink"}, "unknown color 'pink'; allowed: red, green, blue"),
    ({"motion": "fly"}, "unknown motion 'fly'; allowed: still, move"),
    ({"direction": "sideways"}, "unknown direction 'sideways'; allowed: right, left"),
    ({"motion": "still", "direction": "up"}, "direction is only for motions move, turn"),
    ({"motion": "move", "direction2": "up"}, "direction2 is only for motions turn"),
    ({"region": "bottom", "motion": "fall"}, "no valid start.*can start at: top left, top"),
    ({"region": "right", "direction": "right"}, "no valid start.*can start at: top left"),
    ({"region": "top", "motion": "grow", "size": "large"}, "can start at: center"),
    ({"direction": "right", "direction2": "left"}, "mirror image"),
    ({"direction": "up", "direction2": "up"}, "two different directions"),
    ({"offset": (0.5, 0)}, "offset"),
    ([{"region": "top"}, {"region": "top"}], "same region"),
    ([{"color": "red"}, {"color": "red"}], "same color"),
    ([{}, {}, {}, {}], "4 objects but max_objects is 3"),
    ("red", "fix is a dict"),
])
def test_bad_fixes_are_clear_errors(fix, message):
    with pytest.raises(ValueError, match=message):
        sample_spec(0, fix=fix)


def test_fix_and_the_motion_filter():
    with pytest.raises(ValueError, match="needs motion move or turn, which motions=\\['still'\\]"):
        sample_spec(0, motions=["still"], fix={"direction": "right"})
    # an explicitly fixed motion wins over the filter, which still applies to the other objects
    spec = sample_spec(3, motions=["still"], min_objects=3, fix={"motion": "fall"})
    assert [o.motion for o in spec.objects] == ["fall", "still", "still"]
