"""Notebook 06's pictures (sora_mini.viz.training) and the learning curve of the prompt suite."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from sora_mini.train.video import (
    MASK_STRATEGIES,
    LatentVideos,
    MaskRatios,
    VideoBatches,
    VideoRecipe,
    time_shift,
)
from sora_mini.viz import (
    batch_markdown,
    follow_training,
    plot_learning_curve,
    plot_loss_curve,
    plot_mask_strategies,
    plot_packed_batch,
    plot_snapshot_grid,
    plot_throughput,
    plot_time_shift,
)


def _videos(n: int = 12) -> LatentVideos:
    """Latents of three durations (1, 2 and 3 latent frames of 4 x 4) with captions of 5 tokens."""
    latents = [torch.randn(4, 1 + i % 3, 4, 4).to(torch.bfloat16) for i in range(n)]
    text = torch.randn(n, 5, 6).to(torch.bfloat16)
    return LatentVideos(latents, [f"caption {i}" for i in range(n)], text, torch.ones(n, 5, dtype=torch.bool),
                        torch.zeros(1, 2, 6).to(torch.bfloat16), torch.ones(1, 2, dtype=torch.bool),
                        [(1 + 4 * (i % 3), 16, 16) for i in range(n)])


def _batches(**recipe) -> VideoBatches:
    return VideoBatches(_videos(), VideoRecipe(pack_length=16, tokens_per_step=40, **recipe), (1, 2, 2))


def test_batch_names_its_examples_strategies_and_dropped_captions():
    batches = _batches(caption_dropout=1.0)
    batch = batches(0)
    n = len(batch["t"])
    assert batch["index"].shape == (n,) and len(batch["strategy"]) == n and bool(batch["dropped"].all())
    for k, i in enumerate(batch["index"].tolist()):
        assert int((batch["packed"].segment_ids == k).sum()) == batches.lengths[i]
        if batches.grids[i][0] == 1:
            assert batch["strategy"][k] in ("none", "block")
    table = batch_markdown(batch, batches).splitlines()
    assert len(table) == 2 + n and all("dropped" in line for line in table[2:])
    assert f"| {time_shift(batches.grids[int(batch['index'][0])]):.2f} |" in table[2]
    short = batch_markdown(batch, batches, max_rows=1).splitlines()
    assert len(short) == 4 and f"{n - 1} more" in short[-1]


def test_packed_batch_picture_shows_roles_and_times():
    batch = _batches(masks=MaskRatios(head=1.0, head_k=0, tail_k=0, head_tail=0, interleaved=0, single=0,
                                      block=0))(1)
    fig = plot_packed_batch(batch)
    seg = batch["packed"].segment_ids.numpy()
    roles = np.asarray(fig.axes[1].images[0].get_array())
    assert (roles[seg < 0] == 0).all()
    assert ((roles == 2) == batch["given"].numpy()).all() and (roles == 2).any()
    times = fig.axes[2].images[0].get_array()
    k = int(seg[0, 0])
    assert times[0, 0] == pytest.approx(float(batch["t"][k]))


def test_mask_strategy_gallery_draws_every_strategy():
    fig = plot_mask_strategies((3, 2, 2), MaskRatios())
    rows = [ax for ax in fig.axes if ax.images]
    assert len(rows) == len(MASK_STRATEGIES)
    none, head = (np.ma.filled(ax.images[0].get_array(), -1) for ax in rows[:2])
    assert (none[none >= 0] == 0).all()
    assert (head[:, :2] == 1).all() and (head[:, 3:][head[:, 3:] >= 0] == 0).all()  # frame 0 given


def test_time_shift_bars_are_the_recipe_shift():
    grids = [(3, 4, 4), (1, 4, 4), (2, 4, 8), (1, 4, 4)]
    fig = plot_time_shift(grids, VideoRecipe(), draws=500)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == pytest.approx([time_shift(g) for g in [(1, 4, 4), (3, 4, 4), (2, 4, 8)]])


def _log_rows(n: int = 4) -> list[dict]:
    return [{"step": 10 * (i + 1), "loss": 2.0 - 0.3 * i, "lr": 1e-3, "tokens_per_s": 100.0 + i,
             "model_flops_per_s": 1e9 * (1 + i), "elapsed_s": 2.0 * (i + 1)} for i in range(n)]


def test_loss_and_throughput_curves_plot_the_log():
    rows = _log_rows()
    assert list(plot_loss_curve(rows).axes[0].lines[0].get_ydata()) == [r["loss"] for r in rows]
    assert len(plot_loss_curve([]).axes[0].lines) == 0  # nothing logged yet
    fig = plot_throughput(rows)
    assert list(fig.axes[1].lines[0].get_ydata()) == pytest.approx([1.0, 2.0, 3.0, 4.0])  # GFLOP/s


def test_follow_training_returns_the_result_and_raises_its_error(tmp_path):
    def train():
        with open(tmp_path / "log.jsonl", "a") as f:
            f.writelines(json.dumps(row) + "\n" for row in _log_rows(2))
        return "trained"

    def fail():
        raise RuntimeError("loss is nan")

    with ThreadPoolExecutor(1) as pool:
        assert follow_training(pool.submit(train), tmp_path, every_s=0.01) == "trained"
        with pytest.raises(RuntimeError, match="nan"):
            follow_training(pool.submit(fail), tmp_path / "empty", every_s=0.01)


def test_snapshot_grid_has_a_cell_per_prompt_and_step():
    rng = np.random.default_rng(0)
    samples = {s: rng.integers(0, 255, (2, 5, 8, 8, 3), dtype=np.uint8) for s in (20, 10, 30)}
    fig = plot_snapshot_grid(samples, ["a", "b"], frames=3)
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:3]] == ["step 10", "step 20", "step 30"]
    cell = fig.axes[0].images[0].get_array()
    assert cell.shape == (8, 3 * 9 - 1, 3)  # frames 0, 2, 4 with a 1-pixel gap
    assert np.array_equal(cell[:, :8], samples[10][0, 0])


def test_snapshots_of_every_stage_count_from_the_first(tmp_path):
    from sora_mini.artifacts.stages import stage_chain, stage_snapshots

    def stage(name, init_from, log, snaps):
        folder = tmp_path / name
        (folder / "training.json").parent.mkdir(parents=True)
        (folder / "training.json").write_text(json.dumps({"result": {"init_from": init_from}}))
        (folder / "log.jsonl").write_text("\n".join(json.dumps(r) for r in log))
        for step in snaps:
            (folder / "snapshots" / f"step-{step:06d}").mkdir(parents=True)
            (folder / "snapshots" / f"step-{step:06d}" / "model.safetensors").write_bytes(b"")
        return folder

    first = stage("text_to_video-a", None, _log_rows(), [10, 40])  # 40 steps, 8 s
    second = stage("text_to_video-b", first.name, [{"step": 10, "elapsed_s": 4.0}, {"step": 20, "elapsed_s": 6.0}],
                   [5, 20])
    assert stage_chain(second) == [first, second] and stage_chain(first) == [first]
    snaps = stage_snapshots(second)
    assert [(s.step, s.stage) for s in snaps] == [(10, 1), (40, 1), (45, 2), (60, 2)]
    assert [s.seconds for s in snaps] == pytest.approx([2.0, 8.0, 10.0, 14.0])
    assert snaps[-1].folder == second / "snapshots" / "step-000020"
    rows = [{"attribute": "color", "step": s.step, "train_seconds": s.seconds, "stage": s.stage, "mean": 0.5,
             "low": 0.4, "high": 0.6, "n": 4} for s in snaps]
    ax = plot_learning_curve(rows).axes[0]
    assert [line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == ":"] == [pytest.approx(8.0 / 60)]
    (first / "training.json").unlink()
    with pytest.raises(FileNotFoundError, match="side by side"):
        stage_chain(second)


def test_learning_curve_scores_every_snapshot_and_caches(tiny_pipeline_dir, tiny_run_root, tmp_path, monkeypatch):
    from sora_mini.artifacts.video import snapshot_dirs
    from sora_mini.pipeline import train_pipeline
    from sora_mini.studies import prompt_suite

    folder = train_pipeline("tiny", run_root=tiny_run_root, progress=False, steps=4, snapshot_every=2)
    assert [s for s, _ in snapshot_dirs(folder)] == [2, 4]
    rows = prompt_suite.learning_curve(folder, "tiny", run_root=tmp_path, prompts=2, progress=False)
    assert {r["step"] for r in rows} == {2, 4}
    assert {"color", "shape", "all_three"} <= {r["attribute"] for r in rows}
    assert all(r["n"] == 2 and r["aspect"] == "all" and 0 <= r["low"] <= r["mean"] <= r["high"] <= 1 for r in rows)
    seconds = {r["step"]: r["train_seconds"] for r in rows}
    assert 0 < seconds[2] < seconds[4]
    fig = plot_learning_curve(rows)
    assert len(fig.axes[0].lines) == len({r["attribute"] for r in rows} & {"color", "shape", "direction", "motion",
                                                                           "all_three"})

    monkeypatch.setattr(prompt_suite, "run_suite", lambda *a, **k: pytest.fail("not cached"))
    assert prompt_suite.learning_curve(folder, "tiny", run_root=tmp_path, prompts=2, progress=False) == rows
    with pytest.raises(FileNotFoundError, match="snapshot_every"):
        prompt_suite.learning_curve(tiny_pipeline_dir, "tiny", run_root=tmp_path)
    with pytest.raises(ValueError, match="pick 1 to"):
        prompt_suite.curve_prompts(prompt_suite.suite_config("tiny"), 99)
