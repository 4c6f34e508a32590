"""Notebook 08's measurements of the prompting modes (``sora_mini.studies.prompting_modes``) and
their figures: the measurements on made-up outputs where the answer is known, then every mode on
the tiny pipeline (what must hold whatever an untrained model generates)."""

import matplotlib
import numpy as np
import pytest

from sora_mini.evaluate import PSNR_CAP_DB
from sora_mini.studies import prompting_modes as pm
from sora_mini.viz import modes_markdown, plot_edit_tradeoff, plot_frame_steps
from sora_mini.world.captions import parse_caption

matplotlib.use("agg")


def ramp(frames: int, step: int = 4) -> np.ndarray:
    """uint8 [frames, 8, 8, 3]: every pixel brighter by ``step`` levels a frame."""
    return (np.arange(frames, dtype=np.uint8)[:, None, None, None] * step).repeat(8, 1).repeat(8, 2).repeat(3, 3)


def test_presets_and_bad_configs():
    assert pm.modes_config("small").strengths[0] == 0.1 and pm.modes_config("small").strengths[-1] == 1.0
    assert pm.modes_config("tiny", prompts=1).prompts == 1
    with pytest.raises(ValueError, match="unknown scale"):
        pm.modes_config("huge")
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        pm.modes_config("tiny", strengths=(0.5, 1.5))
    with pytest.raises(ValueError, match="must be >= 1"):
        pm.modes_config("tiny", seeds=0)


def test_scenes_are_slow_circles_and_the_edit_changes_only_the_colour():
    config = pm.modes_config("tiny", prompts=5)
    scenes = pm.mode_scenes(config)
    assert len(scenes) == 5 and len({pm.prompts_of(s)["prompt"] for s in scenes}) > 1
    for spec in scenes:
        (obj,) = spec.objects
        color = obj.color
        assert (obj.shape, obj.motion, obj.speed) == ("circle", "move", "slowly") and color != "blue"
        before = parse_caption(pm.prompts_of(spec)["prompt"]).objects[0]
        after = parse_caption(pm.prompts_of(pm.recolored(spec, "blue"))["prompt"]).objects[0]
        assert after.color == "blue" and (after.shape, after.direction) == (before.shape, before.direction)
        assert spec.objects[0].color == color  # the scene itself is left as it was


def test_joined_clips_put_the_new_frames_on_the_right_side():
    world = ramp(13)
    forward = world[6:13]  # an extension of world[:9] forward, its first 3 frames given
    assert np.array_equal(pm.joined_clip(world[:9], forward, [0, 1, 2], "forward"), world)
    backward = world[:7]  # an extension of world[4:] backward, its last 3 frames given
    assert np.array_equal(pm.joined_clip(world[4:], backward, [4, 5, 6], "backward"), world)


def test_step_ratio_finds_a_jump():
    smooth = ramp(9)
    assert pm.step_ratio(smooth, [4]) == pytest.approx(1.0)
    jump = smooth.copy()
    jump[5:] += 40  # step 4 (frame 4 to 5) is 11x the others
    assert pm.step_ratio(jump, [4]) == pytest.approx(11.0)
    info = {"given_frames": [0, 1, 2], "segment_starts": [0, 2]}  # the second segment's new frames from 5
    assert pm.segment_boundaries(info) == [4]


def test_inpaint_row_sees_a_change_outside_the_box():
    clip = ramp(3)
    inside = clip.copy()
    inside[:, 2:4, 2:4] = 255
    row = pm.inpaint_row(inside, clip, (2, 2, 4, 4))
    assert row["outside_max_diff"] == 0 and row["inside_mean_diff"] > 0
    outside = inside.copy()
    outside[1, 0, 7] = 0
    assert pm.inpaint_row(outside, clip, (2, 2, 4, 4))["outside_max_diff"] == 4


def fake_result(gap: float, followed: list[float]) -> dict:
    n = len(followed)
    rows = {"i2v": [{"gap": gap, "followed": f} for f in followed],
            "extend": [{"direction_of_extension": d, "direction": 1.0, "new_direction": 1.0, "truth_direction": 1.0,
                        "seam_ratio": 1.0}
                       for d in ("forward", "backward")],
            "connect": [{"gap": gap, "seam_ratio": 2.0}] * n, "loop": [{"ratio": 1.2}] * n, "inpaint": [{"outside_max_diff": 0}] * n,
            "long": [{"boundary_ratio": 2.0, "direction": None}] * n,
            "edit": [{"strength": s, "faithfulness": 30 - 10 * s, "adherence": s, "color": float(s > 0.5)}
                     for s in (1.0, 0.1, 0.5)]}
    return {"rows": rows}


def test_summary_checks_each_target():
    good = {(r["mode"], r["measure"]): r for r in pm.summary(fake_result(0.4, [1.0] * 10))}
    bad = {(r["mode"], r["measure"]): r for r in pm.summary(fake_result(1.6, [1.0] * 5 + [0.0] * 5))}
    i2v_gap = ("i2v", "first frame: reconstruction PSNR - PSNR to the image (dB)")
    motion = ("i2v", "the prompt's motion followed (evaluator)")
    assert good[i2v_gap]["met"] and not bad[i2v_gap]["met"]
    assert good[motion]["met"] and bad[motion]["value"] == 0.5 and not bad[motion]["met"]
    assert bad[motion]["low"] < 0.5 < bad[motion]["high"]  # a Wilson interval around the rate
    assert {r["mode"] for r in good.values()} == set(pm.MODES)
    assert all(r["met"] is None for r in good.values() if not r["target"])
    long_direction = good[("long", "direction kept over the whole video")]
    assert long_direction["value"] == 0.0  # not read = not kept
    curve = pm.edit_curve(fake_result(0.4, [1.0]))
    assert [p["strength"] for p in curve] == [0.1, 0.5, 1.0] and curve[0]["faithfulness"] == pytest.approx(29.0)
    table = modes_markdown(pm.summary(fake_result(0.4, [1.0] * 10)), modes=("i2v",)).splitlines()
    assert len(table) == 2 + 2 and table[2].endswith("| <= 1 | yes |")


def test_every_mode_on_the_tiny_pipeline_caches_and_plots(tiny_pipeline_dir, tmp_path):
    small = {"prompts": 1, "seeds": 1, "strengths": (0.0, 1.0), "segments": 2}
    result = pm.load_or_run(tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False, **small)
    rows = result["rows"]
    assert {m: len(rows[m]) for m in pm.MODES} == {"i2v": 1, "extend": 2, "connect": 1, "loop": 1, "edit": 2,
                                                   "inpaint": 1, "long": 1}
    assert abs(rows["i2v"][0]["gap"]) < 0.1  # the first frame comes back as the autoencoder's reconstruction
    assert rows["inpaint"][0]["outside_max_diff"] == 0 and rows["inpaint"][0]["inside_mean_diff"] > 0
    zero, one = sorted(rows["edit"], key=lambda r: r["strength"])
    assert zero["faithfulness"] == PSNR_CAP_DB > one["faithfulness"]  # strength 0 returns the input
    assert rows["long"][0]["frames"] == 9 + (9 - 5)
    assert [r["frames"] for r in rows["extend"]] == [9 + 4, 9 + 1]  # 5 frames given forward, 8 backward
    assert pm.load_or_run(tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False, **small) == result
    assert len(list(tmp_path.glob("tiny/prompting_modes_v2-*/result.json"))) == 1
    assert {r["mode"] for r in pm.summary(result)} == set(pm.MODES)
    assert len(plot_edit_tradeoff(pm.edit_curve(result)).axes) == 3
    fig = plot_frame_steps(ramp(5), {"seam": [2]})
    assert len(fig.axes[0].get_legend().get_texts()) == 3  # steps, the seam, the median


def test_connect_row_measures_the_step_into_the_given_end():
    class Identity:  # a "pipeline" whose autoencoder reconstructs exactly
        @staticmethod
        def reconstruct(video):
            return np.asarray(video)[None]

    first, second = ramp(9), ramp(9)[::-1].copy()
    video = np.concatenate([first[-1:], ramp(4), second[:4]])  # head 1, 4 generated, tail 4
    info = {"head_frames": 1, "tail_frames": 4, "given_frames": [0, 5, 6, 7, 8]}
    row = pm.connect_row(Identity(), video, info, first, second)
    steps = np.abs(np.diff(video.astype(float), axis=0)).mean(axis=(1, 2, 3))
    assert row["seam_ratio"] == pytest.approx(steps[4] / np.median(steps))
    assert row["gap"] == pytest.approx(0.0) and row["seam_ratio"] > 1.5  # the tail jumps back up the ramp
