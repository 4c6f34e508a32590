"""Notebook 07's sampling sweeps (steps x sampler, guidance) and their figures."""

from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

from sora_mini.pipeline import SamplingDefaults
from sora_mini.studies import sampling_sweeps as ss
from sora_mini.studies.prompt_suite import summarize
from sora_mini.viz import plot_guidance_sweep, plot_step_sweep, suite_markdown

matplotlib.use("agg")


class FakePipe:
    """A pipeline whose every video is one grey level set by the seed (not by the prompt)."""

    defaults = SamplingDefaults(num_inference_steps=7, guidance_scale=2.5, sampler="heun")

    def __init__(self):
        self.calls = []

    def __call__(self, prompts, *, height, width, num_frames, seed, extend, **sampling):
        self.calls.append({"prompts": prompts, "seed": seed, "extend": extend, **sampling})
        videos = np.full((len(prompts), num_frames, height, width, 3), 60 * seed, np.uint8)
        return SimpleNamespace(videos=videos)


def test_presets_and_bad_configs():
    assert ss.sweep_config("small").steps == (4, 8, 16, 32)
    assert ss.sweep_config("tiny", prompts=1).prompts == 1
    with pytest.raises(ValueError, match="seeds >= 2"):
        ss.sweep_config("tiny", seeds=1)
    with pytest.raises(ValueError, match="unknown scale"):
        ss.sweep_config("huge")
    with pytest.raises(ValueError, match="at most"):
        ss.sweep_prompts(ss.sweep_config("tiny", prompts=10_000))
    with pytest.raises(ValueError, match="unknown sweep"):
        ss.sweep_points(FakePipe(), "colour", ss.sweep_config("tiny"))


def test_points_take_the_pipelines_defaults():
    config = ss.sweep_config("tiny", samplers=("euler",), steps=(2, 4), guidance_scales=(1.0, 3.0), sample_steps=None)
    steps = ss.sweep_points(FakePipe(), "steps", config)
    assert [p["num_inference_steps"] for p in steps] == [2, 4]
    assert all(p["guidance_scale"] == 2.5 for p in steps)
    guidance = ss.sweep_points(FakePipe(), "guidance", config)
    assert [(p["sampler"], p["num_inference_steps"], p["guidance_scale"]) for p in guidance] == \
        [("heun", 7, 1.0), ("heun", 7, 3.0)]


def test_diversity_is_between_seeds_of_one_prompt():
    black, white = np.zeros((1, 2, 4, 4, 3), np.uint8), np.full((1, 2, 4, 4, 3), 255, np.uint8)
    assert ss.video_diversity(np.concatenate([black, white])) == pytest.approx(1.0)
    assert ss.video_diversity(np.concatenate([black, black])) == 0.0
    pipe = FakePipe()  # videos differ by seed only: diversity > 0; across prompts it would be 0
    config = ss.sweep_config("tiny", prompts=2, seeds=3)
    row = ss.measure_point(pipe, ss.sweep_prompts(config), config, sampler="euler", num_inference_steps=2)
    levels = np.array([0, 60, 120]) / 255
    assert row["diversity"] == pytest.approx(np.abs(levels[:, None] - levels[None]).sum() / 6)
    assert row["diversity_std"] == pytest.approx(0.0)
    assert [c["seed"] for c in pipe.calls] == [0, 1, 2]
    assert not any(c["extend"] for c in pipe.calls)  # extended once, by the study, the same for every seed
    assert len({tuple(c["prompts"]) for c in pipe.calls}) == 1


def test_sweeps_on_the_tiny_pipeline_cache_and_plot(tiny_pipeline_dir, tmp_path):
    small = {"prompts": 1, "seeds": 2, "steps": (1, 2), "guidance_scales": (1.0, 4.0)}
    steps = ss.load_or_run_sweep("steps", tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False, **small)
    assert [(r["sampler"], r["num_inference_steps"], r["evals"]) for r in steps["rows"]] == \
        [("euler", 1, 1), ("euler", 2, 2), ("heun", 1, 1), ("heun", 2, 3)]
    assert all(0.0 <= r["adherence"] <= 1.0 and r["seconds"] > 0 and len(r["adherence_per_seed"]) == 2
               for r in steps["rows"])
    assert ss.load_or_run_sweep("steps", tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False, **small) == steps
    assert len(list(tmp_path.glob("tiny/sampling_steps-*/result.json"))) == 1
    guidance = ss.load_or_run_sweep("guidance", tiny_pipeline_dir, "tiny", run_root=tmp_path, progress=False,
                                    **small)
    assert [r["guidance_scale"] for r in guidance["rows"]] == [1.0, 4.0]
    assert all(r["diversity"] > 0 for r in guidance["rows"])  # two noise seeds never give one video
    fig = plot_step_sweep(steps)
    assert len(fig.axes[0].get_legend().get_texts()) == 2  # a line per sampler
    assert len(plot_guidance_sweep(guidance, default=3.0).axes) == 2


def test_suite_markdown_has_a_row_per_attribute():
    rows = [{"group": "one_object", "aspect": a, "attributes": {"color": c, "shape": 1.0}, "framing": 1.0,
             "all_three": 0.0, "key": "direction", "prompt": "a red circle moves up"}
            for a, c in (("1:1", 1.0), ("16:9", 0.0))]
    table = suite_markdown(summarize(rows), "one_object").splitlines()
    assert table[0] == "| attribute | all | 16:9 | 1:1 |"
    color = next(line for line in table if line.startswith("| color")).split("|")
    assert color[2].strip().startswith("0.50") and "n=2" in color[2]
    assert color[3].strip().startswith("0.00") and color[4].strip().startswith("1.00")
    assert len(table) == 2 + 4  # header, rule, color / shape / framing / all_three
    with pytest.raises(ValueError, match="no rows of group"):
        suite_markdown(summarize(rows), "events")
