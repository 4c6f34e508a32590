"""The motion profile: the tracked object's px per frame over the clip, model against world."""

import numpy as np
import pytest

from sora_mini.studies import motion_profile as mp
from sora_mini.world import SPEEDS, render
from sora_mini.world.captions import parse_caption


def test_the_worlds_movers_keep_their_speed_through_a_bounce():
    """The world's profile is flat at the stated speed, before and after the wall (what the model's
    is compared with): a large slow circle from the centre meets the right wall about halfway."""
    config = mp.profile_config("small")
    for seed in range(3):
        video = render(parse_caption(mp.BOUNCE).to_scene_spec(seed=seed), 32, 32, 17)[0]
        read = mp.speed_profile(video, config.windows)
        early, middle, late = read["speeds"]
        np.testing.assert_allclose([early, late], SPEEDS["slowly"] * 32, rtol=0.1)
        assert 0.75 * early < middle <= early * 1.01  # the one step that straddles the wall moves less
        assert read["motion"] == "move"


def test_a_stopping_object_is_read_as_slowing():
    """Frames held still after the middle: the late window's speed falls to about 0."""
    video = render(parse_caption(mp.ACROSS).to_scene_spec(seed=0), 32, 32, 17)[0].copy()
    video[9:] = video[8]
    speeds = mp.speed_profile(video, mp.profile_config("small").windows)["speeds"]
    assert speeds[0] > 0.8 and speeds[2] < 0.1


def test_windows_past_the_clip_and_empty_videos():
    video = render(parse_caption(mp.ACROSS).to_scene_spec(seed=0), 32, 32, 9)[0]
    with pytest.raises(ValueError, match="frame steps"):
        mp.speed_profile(video, ((0, 5), (5, 11)))
    assert mp.speed_profile(np.zeros((9, 32, 32, 3), np.uint8), ((0, 4),)) is None


def test_profile_on_the_tiny_pipeline(tiny_pipeline_dir):
    from sora_mini.pipeline import SoraMiniPipeline

    config = mp.profile_config("tiny")
    rows = mp.run_profile(SoraMiniPipeline.from_pretrained(tiny_pipeline_dir), config, progress=False)
    world = [r for r in rows if r["source"] == "world"]
    assert len(world) == len(config.cases) * config.seeds * config.batch  # the world's objects are always found
    summary = mp.summarize_profile(rows)
    assert {(s["case"], s["source"]) for s in summary} >= {(name, "world") for name, _ in config.cases}
    table = mp.profile_markdown(summary, config)
    assert table.count("\n") == len(summary) + 1 and "steps 1-3" in table


def test_size_change_of_constant_wobbling_and_growing_objects():
    still = mp.size_change(np.full(17, 4.5))
    assert still["size_wobble"] == pytest.approx(0.0, abs=1e-12)
    assert still["size_drift"] == pytest.approx(1.0)
    frames = np.arange(17, dtype=float)
    breathing = mp.size_change(4.5 * (1 + 0.05 * np.sin(2 * np.pi * frames / 8)))  # no trend over whole periods
    assert 0.03 < breathing["size_wobble"] < 0.04 and abs(breathing["size_drift"] - 1) < 0.05
    growing = mp.size_change(np.linspace(4.0, 6.0, 17))  # end / start = 1.5
    assert growing["size_drift"] == pytest.approx(1.5)
    with_gaps = np.linspace(4.0, 6.0, 17)
    with_gaps[[0, 5, 16]] = np.nan  # unmeasured frames are left out; the line still spans the clip
    gaps = mp.size_change(with_gaps)
    assert gaps["size_drift"] == pytest.approx(1.5)
    assert np.isnan(gaps["sizes"][0]) and np.isnan(gaps["sizes"][16]) and len(gaps["sizes"]) == 17
    np.testing.assert_allclose(gaps["sizes"], with_gaps / np.nanmedian(with_gaps))  # nan where unmeasured
    assert np.isnan(mp.size_change(np.array([np.nan, 4.0, np.nan]))["size_drift"])


def test_the_worlds_movers_keep_their_size_and_its_growers_are_read_as_drift():
    """The world draws a mover at one size (wobble about 0, no drift); an object that grows drifts past 20 %."""
    for seed in range(3):
        read = mp.speed_profile(render(parse_caption(mp.ACROSS).to_scene_spec(seed=seed), 32, 32, 17)[0],
                                ((0, 5),))
        assert read["size_wobble"] < 0.01 and abs(read["size_drift"] - 1) < 0.02
    grow = render(parse_caption("a small red circle starts in the center and grows. the background is black.")
                  .to_scene_spec(seed=0), 32, 32, 17)[0]
    assert mp.speed_profile(grow, ((0, 5),))["size_drift"] > 1.2
