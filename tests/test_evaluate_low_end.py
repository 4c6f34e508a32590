"""The evaluator's low end: garbage scores 0 (or chance), ground truth stays at 1.

Each case names its expected level in its docstring. Noise cases use several seeds and the
stated prompt's own colour and shape, so a pass is not a lucky draw.
"""

import numpy as np
import pytest
from scipy import ndimage

from sora_mini.evaluate import MIN_ONE_PIECE, VideoAnalyzer, evaluate
from sora_mini.world import render, sample_spec
from sora_mini.world.captions import detailed_caption
from sora_mini.world.spec import BACKGROUNDS, PALETTE, ObjectSpec, SceneSpec

T, H, W = 9, 32, 32
SEEDS = range(6)
PROMPT = "a small red circle starts at the left and moves right slowly. the background is black."
MOVER = SceneSpec(
    [ObjectSpec("circle", "red", region="left", motion="move", direction="right", speed="slowly")]
).validate()


def uniform_noise(rng):
    return rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8)


def block_noise(rng):
    """4x4 blocks of exact palette colours (and the black background): every colour is pure."""
    colours = np.array([*PALETTE.values(), BACKGROUNDS["black"]], dtype=np.uint8)
    return colours[rng.integers(0, len(colours), (T, H // 4, W // 4))].repeat(4, 1).repeat(4, 2)


def smooth_noise(rng):
    """Low-pass Gaussian noise in [-1, 1] mapped to uint8: what a decoder makes of random latents."""
    x = 3 * ndimage.gaussian_filter(rng.standard_normal((T, H, W, 3)), (0, 2, 2, 0))
    return np.round((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8)


def assert_nothing(result):
    """No credible object: every stated attribute 0, physics / consistency / framing 0."""
    att = {k: v for k, v in result["adherence"]["attributes"].items() if v is not None}
    assert result["credible_objects"] == 0
    assert att and all(v == 0.0 for v in att.values()), att
    assert result["adherence"]["overall"] == 0.0
    for part in ("physics", "consistency", "framing"):
        assert result[part]["score"] == 0.0, (part, result[part])


@pytest.mark.parametrize("make", [uniform_noise, block_noise, smooth_noise])
def test_noise_scores_zero(make):
    """Expected 0 on every attribute: noise has colours (block noise all of them, pure) but no
    object. The analyzer still reports the colours it saw, marked not credible."""
    seen_colours = 0
    for seed in SEEDS:
        result = evaluate(make(np.random.default_rng(seed)), PROMPT)
        assert_nothing(result)
        seen_colours += len(result["detected"])
        assert all(not d["credible"] for d in result["detected"])
    if make is not uniform_noise:  # the floor, not the colour detector, rejects them
        assert seen_colours >= 3 * len(SEEDS)


@pytest.mark.parametrize("background", list(BACKGROUNDS))
def test_blank_frames_score_zero(background):
    """Expected 0, the background attribute too: an empty frame of the prompted background
    follows no prompt that asks for an object."""
    video = np.broadcast_to(np.array(BACKGROUNDS[background], np.uint8), (T, H, W, 3)).copy()
    result = evaluate(video, f"a red circle moves right. the background is {background}.")
    assert_nothing(result)


def test_shuffled_frames_fail_motion_but_keep_appearance():
    """Expected: colour, shape, size and count still 1 (each frame shows the right object: correct
    behaviour), while motion + direction together pass at about chance (1/8 for a direction
    among eight) and physics drops. Over 12 permutations at most a quarter may read 'moves right'."""
    video, _ = render(MOVER, H, W, T)
    right, physics = 0, []
    for seed in range(12):
        perm = np.random.default_rng(seed).permutation(T)
        if (perm == np.arange(T)).all():
            continue
        result = evaluate(video[perm], PROMPT)
        att = result["adherence"]["attributes"]
        assert att["color"] == att["shape"] == att["size"] == att["count"] == 1.0
        right += att["motion"] == 1.0 and att["direction"] == 1.0
        physics.append(result["physics"]["score"])
    assert right <= 3, right
    assert np.mean(physics) < 0.7


@pytest.mark.parametrize(
    "caption, wrong",
    [
        ("a blue circle moves right", "color"),
        ("a red square moves right", "shape"),
        ("a red triangle moves right", "shape"),
        ("a red circle moves left", "direction"),
        ("a red circle moves up", "direction"),
        ("a red circle falls", "motion"),
    ],
)
def test_right_video_wrong_caption(caption, wrong):
    """Expected: the contradicted attribute 0, the others 1 (the video does show them), so
    overall = (n - 1) / n; the object is found, so count is 1."""
    video, _ = render(MOVER, H, W, T)
    att = evaluate(video, caption)["adherence"]["attributes"]
    stated = {k: v for k, v in att.items() if v is not None}
    assert stated.pop(wrong) == 0.0
    assert all(v == 1.0 for v in stated.values()), stated


def test_ground_truth_objects_are_credible():
    """Expected: every rendered object (occluded, cut by the frame, appearing) is credible, and a
    slight blur (a decoder's softness) does not change that."""
    for seed in range(40):
        spec = sample_spec(300 + seed)
        video, _ = render(spec, 32, 48, 9)
        blurred = np.clip(ndimage.gaussian_filter(video.astype(float), (0, 0.7, 0.7, 0)), 0, 255)
        for v in (video, blurred.astype(np.uint8)):
            analysis = VideoAnalyzer().analyze(v)
            assert len(analysis.credible_objects) == len(spec.objects), (seed, analysis.to_dict())
            assert min(o.credibility["one_piece"] for o in analysis.objects) >= MIN_ONE_PIECE
        assert evaluate(analysis, detailed_caption(spec))["credible_objects"] == len(spec.objects)

