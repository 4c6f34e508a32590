"""benchmarks/bench_text_to_video.py runs at tiny and reports both targets (no timing is asserted)."""

import importlib.util

import pytest

from sora_mini.runner import list_benchmarks


@pytest.fixture(scope="module")
def bench():
    (path,) = list_benchmarks(["text_to_video"])
    spec = importlib.util.spec_from_file_location("bench_text_to_video", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_reports_sampling_and_throughput(bench, tiny_pipeline_dir, tiny_run_root, capsys):
    from sora_mini.pipeline import SoraMiniPipeline

    res = bench.main(quick=True, run_root=tiny_run_root)
    d = SoraMiniPipeline.from_pretrained(tiny_pipeline_dir).defaults
    s, t = res["sampling"], res["training"]
    assert (s["sampler"], s["steps"], s["guidance_scale"]) == (d.sampler, d.num_inference_steps, d.guidance_scale)
    assert s["min_s"] <= s["median_s"] <= s["max_s"] and s["met"] == (s["median_s"] <= 1.0)
    assert t["tokens_per_step"] > 0 and t["step_s"] > 0 and t["matmul_flops_per_s"] > 0
    assert t["ratio"] == pytest.approx(t["flops_per_token"] * t["tokens_per_step"] / t["step_s"]
                                       / t["matmul_flops_per_s"])
    assert t["met"] == (t["ratio"] >= 0.5)
    out = capsys.readouterr().out
    assert "target <= 1 s" in out and "target >= 0.5" in out


def test_other_scales_need_a_trained_pipeline(bench, tmp_path, monkeypatch):
    from sora_mini import pipeline

    monkeypatch.setattr(pipeline, "shipped_dir", lambda scale: tmp_path / "none" / scale)
    with pytest.raises(FileNotFoundError, match="sora-mini train --scale base"):
        bench.load_pipeline("base", run_root=tmp_path)
