"""Metrics on known cases: a perfect video scores 1, a wrong attribute 0, broken physics caught."""

import json

import numpy as np
import pytest

from sora_mini.evaluate import VideoAnalyzer, evaluate, evaluate_video
from sora_mini.evaluate.metrics import event_tolerance, score_adherence
from sora_mini.world import render, sample_spec
from sora_mini.world.captions import CaptionError, detailed_caption, short_caption
from sora_mini.world.render import coverage
from sora_mini.world.spec import BACKGROUNDS, GRAVITY, PALETTE, ObjectSpec, SceneSpec


def paint(layers, H, W, bg="black"):
    T = layers[0][1].shape[0]
    video = np.empty((T, H, W, 3))
    video[:] = BACKGROUNDS[bg]
    for color, a in layers:
        video += (np.asarray(PALETTE[color], dtype=float) - video) * a[..., None]
    return np.clip(np.rint(video), 0, 255).astype(np.uint8)


def one_object_video(centers, r=4.0, shape="circle", color="red", H=32, W=32):
    centers = np.asarray(centers, dtype=float)
    return paint([(color, coverage(shape, centers, np.full(len(centers), r), H, W))], H, W)


def scene(**kw):
    return SceneSpec([ObjectSpec(**{"shape": "circle", "color": "red", **kw})]).validate()


MOVER = scene(size="small", region="left", motion="move", direction="right", speed="slowly")


def test_perfect_videos_score_one():
    seen = set()
    for seed in range(30):
        spec = sample_spec(seed)
        analysis = VideoAnalyzer().analyze(render(spec, 32, 48, 9)[0])
        for text in (detailed_caption(spec), short_caption(spec)):
            r = evaluate(analysis, text)
            assert r["adherence"]["overall"] == 1.0, (seed, text, r["adherence"])
        assert r["framing"]["score"] == 1.0
        assert r["consistency"]["shape_stable"] == 1.0 and r["consistency"]["color_stable"] == 1.0
        if r["physics"]["score"] is not None:
            assert r["physics"]["score"] > 0.95, (seed, r["physics"])
        seen |= {o.motion for o in spec.objects}
    assert {"move", "fall", "turn", "still"} <= seen


def test_wrong_colour_scores_zero_on_colour_only():
    video, _ = render(MOVER, 32, 32, 9)
    r = evaluate(video, "a small blue circle starts at the left and moves right slowly")
    att = r["adherence"]["attributes"]
    assert att["color"] == 0.0
    assert att["shape"] == att["size"] == att["region"] == att["direction"] == att["speed"] == 1.0
    assert evaluate(video, "a red square moves right")["adherence"]["attributes"]["shape"] == 0.0


def test_short_caption_scores_only_what_it_states():
    video, _ = render(MOVER, 32, 32, 9)
    att = evaluate(video, short_caption(MOVER))["adherence"]["attributes"]
    assert att["size"] is None and att["speed"] is None and att["background"] is None
    assert att["direction"] == 1.0


def test_count_and_matching_by_colour():
    spec = SceneSpec(
        [ObjectSpec("circle", "red", region="left"), ObjectSpec("square", "blue", region="right")]
    ).validate()
    video, _ = render(spec, 32, 48, 1)
    # listed in the other order: matched by colour, all right
    r = evaluate(video, "a blue square at the right and a red circle on the left")
    assert r["adherence"]["overall"] == 1.0 and r["adherence"]["matches"] == [1, 0]
    r = evaluate(video, "a red circle")
    assert (
        r["adherence"]["attributes"]["count"] == 0.0
        and r["adherence"]["attributes"]["color"] == 1.0
    )
    # an image cannot show motion: motion attributes are not scored
    att = evaluate(video, "a red circle moves left")["adherence"]["attributes"]
    assert att["motion"] is None and att["direction"] is None


def test_event_timing_within_tolerance():
    spec = scene(motion="appear", event_time="late")
    video, _ = render(spec, 32, 32, 17)
    assert (
        evaluate(video, "a red circle appears late")["adherence"]["attributes"]["event_time"] == 1.0
    )
    assert (
        evaluate(video, "a red circle appears early")["adherence"]["attributes"]["event_time"]
        == 0.0
    )
    assert event_tolerance(17) == 2 and event_tolerance(5) == 1
    # the tolerance is in frames: a detection one frame off passes at 17 frames
    det = [{"shape": "circle", "color": "red", "motion": "appear", "event_frame": 11}]  # late is 12
    assert (
        score_adherence(det, "black", "a red circle appears late", 17)["attributes"]["event_time"]
        == 1.0
    )


def test_physics_catches_shuffled_frames_and_a_velocity_jump():
    video, _ = render(MOVER, 32, 32, 9)
    good = evaluate(video, short_caption(MOVER))["physics"]["score"]
    assert good == 1.0
    shuffled = video[np.random.default_rng(0).permutation(9)]
    assert evaluate(shuffled, short_caption(MOVER))["physics"]["score"] < 0.7
    # the speed doubles half-way (same direction): not a turn, not a bounce, so not physical
    steps = np.where(np.arange(9) < 5, 1.0, 2.0)
    x = 6.0 + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    jump = one_object_video(np.stack([x, np.full(9, 16.0)], 1))
    r = evaluate(jump, "a red circle moves right")
    assert r["physics"]["score"] < 1.0
    assert r["physics"]["per_object"][0]["unexplained_changes"] >= 1


def test_physics_measures_gravity():
    T, unit = 9, 48

    def fall(g):
        y = 8.0 + 0.5 * g * unit * np.arange(T) ** 2
        return one_object_video(np.stack([np.full(T, 24.0), y], 1), r=5.0, H=unit, W=unit)

    right = evaluate(fall(GRAVITY), "a red circle falls")["physics"]
    wrong = evaluate(fall(3 * GRAVITY), "a red circle falls")["physics"]
    assert right["per_object"][0]["gravity"] == pytest.approx(GRAVITY, rel=0.02)
    assert right["score"] > 0.95 and wrong["score"] < 0.1


def test_framing_and_consistency():
    T = 5
    inside = one_object_video(np.tile([16.0, 16.0], (T, 1)))
    cut = one_object_video(np.array([[16.0, 16.0]] * 2 + [[31.0, 16.0]] * 3))  # half out of frame
    assert evaluate(inside, "a red circle")["framing"]["score"] == 1.0
    assert evaluate(cut, "a red circle")["framing"]["score"] < 0.7
    flicker = inside.copy()
    flicker[2] = 0  # gone for one frame, nothing covers it
    assert evaluate(flicker, "a red circle")["consistency"]["presence_stable"] < 1.0
    morph = np.concatenate(
        [inside[:3], one_object_video(np.tile([16.0, 16.0], (2, 1)), shape="square")]
    )
    assert evaluate(morph, "a red circle")["consistency"]["shape_stable"] < 1.0


def test_evaluate_video_is_json_and_errors_are_clear():
    spec = sample_spec(3)
    video, _ = render(spec, 32, 32, 5)
    out = evaluate_video(video, detailed_caption(spec))
    text = json.dumps(out)
    assert "adherence" in text and set(out) >= {
        "detected",
        "adherence",
        "physics",
        "consistency",
        "framing",
    }
    with pytest.raises(CaptionError, match="banana"):
        evaluate_video(video, "a red banana")
