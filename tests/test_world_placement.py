"""The public vocabulary and the one placement rule: valid_start / start_regions agree with the sampler."""

import subprocess
import sys

import numpy as np
import pytest

import sora_mini.world as W
from sora_mini.world import (
    DIRECTIONS,
    MOTIONS,
    REGIONS,
    SIZES,
    VOCABULARY,
    ObjectSpec,
    SceneSpec,
    free_directions,
    render,
    sample_spec,
    start_regions,
    valid_start,
)
from sora_mini.world.placement import places


# ---- the vocabulary ------------------------------------------------------------------------------
def test_vocabulary_is_exported_and_is_what_specs_accept():
    from sora_mini.world import spec as S

    for name in ("SHAPES", "COLORS", "PALETTE", "SIZES", "REGIONS", "MOTIONS", "DIRECTIONS", "SPEEDS",
                 "EVENT_TIMES", "BACKGROUNDS", "MAX_OBJECTS", "VOCABULARY"):
        assert getattr(W, name) is getattr(S, name), name
        assert name in W.__all__
    assert tuple(W.COLORS) == tuple(W.PALETTE)
    fields = {f for f in ObjectSpec.__dataclass_fields__ if f != "offset"}
    assert set(VOCABULARY) == fields | {"background"}
    base = {"shape": "circle", "color": "red", "size": "small", "region": "center", "motion": "turn",
            "direction": "right", "speed": "slowly", "direction2": "up", "event_time": "early"}
    for attribute, values in VOCABULARY.items():
        for v in values:  # every listed value is accepted ...
            if attribute == "background":
                SceneSpec([ObjectSpec(**base)], background=v).validate()
            elif not (attribute.startswith("direction") and v in (base["direction"], base["direction2"])):
                ObjectSpec(**{**base, attribute: v}).validate()
        with pytest.raises(ValueError, match="allowed"):  # ... and nothing else
            if attribute == "background":
                SceneSpec([ObjectSpec(**base)], background="pink").validate()
            else:
                ObjectSpec(**{**base, attribute: "pink"}).validate()


def test_the_subpackage_docstring_lists_every_value():
    doc = " ".join(W.__doc__.split())
    for attribute, values in VOCABULARY.items():
        assert f"``{attribute}``" in doc, attribute
        for v in values:
            assert v in doc, (attribute, v)


def test_the_world_stays_light():
    code = ("import sys; import sora_mini.world as w; from sora_mini.world.captions import parse_caption; "
            "w.render(parse_caption('a red circle moves right').to_scene_spec(1), 32, 32, 3); "
            "w.valid_start('move', 'right', seed=0); "
            "heavy = [m for m in ('torch', 'torchvision', 'matplotlib') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- valid_start / start_regions -----------------------------------------------------------------
def _start_box_inside(obj: ObjectSpec, h: int, w: int) -> bool:
    """The object's largest box at its (unclipped) start lies inside an h x w frame."""
    unit = min(h, w)
    r = SIZES[obj.size] * (1.6 if obj.motion == "grow" else 1.0) * unit
    x, y = obj.start_xy[0] * w, obj.start_xy[1] * h
    return x - r >= 0 and y - r >= 0 and x + r <= w and y + r <= h


@pytest.mark.parametrize("size", list(SIZES))
def test_a_valid_start_has_room_for_its_motion(size):
    for motion in MOTIONS:
        for direction in DIRECTIONS if motion in ("move", "turn") else [None]:
            regions = start_regions(motion, direction, size)
            for seed in range(8):
                start = valid_start(motion, direction, size, seed=seed)
                assert start.region in regions
                obj = ObjectSpec("circle", "red", size=size, region=start.region, offset=start.offset,
                                 motion=motion, direction=direction, speed="quickly" if direction else None,
                                 direction2=free_directions(start.region, not_mirroring=direction)[0]
                                 if motion == "turn" else None,
                                 event_time="late" if motion in ("appear", "disappear", "turn") else None)
                assert np.allclose(start.xy, obj.start_xy)
                for h, w in ((32, 32), (36, 64), (64, 36)):
                    assert _start_box_inside(obj, h, w), (motion, direction, size, start)
                _, ann = render(SceneSpec([obj]), 32, 32, 4)
                if direction is not None:  # the first step goes the asked way: no bounce at the start
                    step = np.diff(ann.objects[0].center[:2], axis=0)
                    assert (np.sign(step) == np.sign(DIRECTIONS[direction])).all(), (direction, start)
                if motion == "fall":
                    assert REGIONS[start.region][1] < 0.7


def test_valid_start_is_seeded_and_varies():
    assert valid_start("move", "right", seed=3) == valid_start("move", "right", seed=3)
    starts = {valid_start("move", "right", seed=s) for s in range(40)}
    assert len(starts) == 40
    assert {s.region for s in starts} == set(start_regions("move", "right"))


def test_valid_start_avoids_other_objects():
    for seed in range(40):
        first = sample_spec(seed, max_objects=1, fix={"size": "small", "color": "red"}).objects[0]
        start = valid_start("move", "down", seed=seed, avoid=[first])
        other = ObjectSpec("square", "blue", region=start.region, offset=start.offset, motion="move",
                           direction="down", speed="slowly")
        assert start.region != first.region
        _, ann = render(SceneSpec([first, other]), 32, 32, 1)
        a, b = ann.objects[0].box[0], ann.objects[1].box[0]
        assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])


def test_the_sampler_uses_the_same_rule():
    """Every sampled object starts where start_regions allows, within its region's offset range."""
    for seed in range(300):
        for o in sample_spec(seed).objects:
            d2 = o.direction2 if o.motion == "turn" else None
            assert o.region in start_regions(o.motion, o.direction, o.size, d2), (seed, o)
            assert places(o.size, o.motion, o.direction, d2, o.region, o.offset), (seed, o)
            if d2 is not None:
                assert d2 in free_directions(o.region, not_mirroring=o.direction)


def test_bad_starts_are_clear_errors():
    with pytest.raises(ValueError, match="no valid start at the right.*choose one of: top left"):
        valid_start("move", "right", region="right", seed=0)
    with pytest.raises(ValueError, match="center"):
        valid_start("grow", size="large", region="top left", seed=0)
    with pytest.raises(ValueError, match="only for motions move, turn"):
        start_regions("still", "right")
    with pytest.raises(ValueError, match="unknown direction 'sideways'; allowed: right"):
        start_regions("move", "sideways")
    with pytest.raises(ValueError, match="unknown motion"):
        valid_start("fly", seed=0)
    assert start_regions("fall") == tuple(r for r in REGIONS if not r.startswith("bottom"))
    assert start_regions("grow", size="large") == ("center",)
    crowded = ObjectSpec("circle", "red", size="large", motion="grow")  # fills the centre
    with pytest.raises(ValueError, match="no free start.*regions taken: \\['center'\\]"):
        valid_start("still", size="large", avoid=[crowded], seed=0)
