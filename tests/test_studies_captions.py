"""Notebook 05's caption-conditioning study at tiny: result shapes, the cache, bad input."""

import json

import numpy as np
import pytest
import torch

from sora_mini.studies import caption_conditioning as cc
from sora_mini.text import NULL_KINDS

FAST = {"seeds": (0, 1), "guidance_scales": (1.0, 2.0)}


@pytest.fixture(scope="module")
def run_root(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")  # the tiny autoencoder and CLIP are trained once here


@pytest.fixture(scope="module")
def results(run_root):
    return {e: cc.load_or_run(e, "tiny", run_root=run_root, **FAST) for e in cc.EXPERIMENTS}


def test_encoders_experiment_scores_each_encoder_per_seed(results):
    r = results["encoders"]
    cfg = cc.CaptionStudyConfig.from_scale("tiny", **FAST)
    assert list(r["arms"]) == list(cc.ENCODERS) and len(r["prompts"]) == cfg.eval_prompts
    for runs in r["arms"].values():
        assert [row["seed"] for row in runs] == [0, 1]
        assert all(len(row["loss"]) == cfg.steps and 0 <= row["adherence"] <= 1 for row in runs)
        assert all(row["attributes"]["direction"] is None for row in runs)  # T = 1: no motion scored
    img = torch.tensor(r["samples"]["minilm"][0])
    assert img.shape == (*cfg.size, 3)
    table = cc.results_table(r)
    assert table.count("\n") == 1 + len(cc.ENCODERS) + 2 and "± " in table
    truth = r["references"]["truth"]
    assert truth["attributes"]["color"] == 1.0  # the evaluator reads rendered scenes right


def test_caption_detail_has_the_three_rows_and_every_scored_attribute(results):
    r = results["caption_detail"]
    assert list(r["arms"]) == ["short captions", "detailed captions", "short + extension"]
    rows = {row["arm"]: row for row in cc.summarize(r)}
    for a in ("count", "background", "color", "shape", "size", "region"):
        assert rows["detailed captions"][a] is not None
    assert len(r["extended"]) == len(r["prompts"])


def test_null_guidance_curves_have_a_point_per_scale_and_kind(results):
    curves = cc.guidance_curves(results["null_guidance"])
    assert list(curves) == list(NULL_KINDS)
    for c in curves.values():
        assert c["scale"] == [1.0, 2.0] and len(c["adherence"]) == len(c["diversity"]) == 2
        assert all(d > 0 for d in c["diversity"])  # different noise seeds give different images


def test_results_are_cached_and_not_recomputed(results, run_root, monkeypatch):
    path = cc.study_dir("encoders", "tiny", run_root=run_root, **FAST) / "results.json"
    assert json.loads(path.read_text()) == results["encoders"]
    monkeypatch.setattr(cc, "run_encoders", lambda *a, **k: pytest.fail("recomputed a cached result"))
    assert cc.load_or_run("encoders", "tiny", run_root=run_root, **FAST) == results["encoders"]
    other = cc.study_dir("encoders", "tiny", run_root=run_root, seeds=(0,))
    assert other != path.parent  # another config, another folder


def test_the_learned_null_and_a_joint_encoder_are_trained_frozen_ones_not(run_root):
    from sora_mini.artifacts.autoencoder import get_autoencoder

    ae = get_autoencoder("tiny", kind="3d_kl", run_root=run_root, progress=False)
    enc = cc.encoder_factories("tiny", run_root=run_root)
    cfg = cc.CaptionStudyConfig.from_scale("tiny", steps=2)
    frozen, _ = enc["minilm"]
    model = cc.build_model(cfg, ae, frozen(0), "learned")
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "null.tokens" in names and not any(n.startswith("encoder") for n in names)
    make, joint = enc["transformer"]
    encoder = make(0)
    before = [p.detach().clone() for p in encoder.parameters()]
    videos = cc.encode_videos(cc.image_data(cfg), ae, encoder, progress=False)
    model = cc.build_model(cfg, ae, encoder, "zeros", train_encoder=joint)
    cc.train_arm(model, videos, cfg, 0, joint=joint)
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters()))


def test_bad_input_is_refused_with_what_to_do(run_root):
    with pytest.raises(ValueError, match="unknown experiment 'colours'; choose one of encoders"):
        cc.load_or_run("colours", "tiny", run_root=run_root)
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        cc.CaptionStudyConfig.from_scale("huge")
    with pytest.raises(ValueError, match="null_encoder 'bert'"):
        cc.CaptionStudyConfig.from_scale("tiny", null_encoder="bert")
    with pytest.raises(ValueError, match="two diversity samples"):
        cc.CaptionStudyConfig.from_scale("tiny", diversity_samples=1)
    with pytest.raises(ValueError, match="at least 2 samples"):
        cc.diversity(torch.zeros(1, 3, 1, 4, 4))


def test_caption_figures_from_the_results(results):
    import matplotlib.pyplot as plt

    from sora_mini.text import load_tokenizer
    from sora_mini.viz import (
        pca_2d,
        plot_attribute_bars,
        plot_guidance,
        plot_samples,
        tokens_markdown,
    )

    table = tokens_markdown(load_tokenizer(), "a red hexagon")
    assert "| 3 | 1 | `[UNK]` | hexagon |" in table.splitlines()  # the unknown word, at its position
    a, b = pca_2d(np.eye(4)[:3], np.eye(4)[1:])
    assert a.shape == b.shape == (3, 2)
    rows = cc.summarize(results["caption_detail"])
    bars = plot_attribute_bars(rows)
    assert len(bars.axes[0].patches) == len(rows) * (1 + 6)  # adherence + the 6 attributes scored at T = 1
    guide = plot_guidance(cc.guidance_curves(results["null_guidance"]))
    assert [len(ax.lines) > 0 for ax in guide.axes] == [True, True]
    r = results["encoders"]
    grid = plot_samples(r["samples"], r["prompts"])
    assert len(grid.axes) == len(cc.ENCODERS) * len(r["prompts"])
    plt.close("all")


def test_the_experiments_share_their_common_arm_and_a_sampling_change_trains_nothing(results, run_root,
                                                                                     monkeypatch):
    # MiniLM with the empty null on detailed captions is an arm of all three: trained once
    enc_rows = results["encoders"]["arms"]["minilm"]
    det_rows = results["caption_detail"]["arms"]["detailed captions"]
    null_rows = results["null_guidance"]["arms"]["empty"]
    for a, b, c in zip(enc_rows, det_rows, null_rows):
        assert a["loss"] == b["loss"] == c["loss"] and a["train_s"] == b["train_s"] == c["train_s"]
    arms = sorted((run_root / "tiny" / "caption_arms").glob("arm-*"))
    # encoders 3 x 2 seeds, + short captions x 2, + the learned and zeros nulls x 2
    assert len(arms) == 6 + 2 + 4 and all((a / "arm.json").is_file() for a in arms)
    monkeypatch.setattr(cc, "train_arm", lambda *a, **k: pytest.fail("retrained a cached arm"))
    other = cc.load_or_run("null_guidance", "tiny", run_root=run_root, seeds=(0, 1), guidance_scales=(3.0,))
    assert [row["loss"] for row in other["arms"]["empty"]] == [row["loss"] for row in null_rows]
    assert [s["scale"] for s in other["arms"]["learned"][0]["scales"]] == [3.0]
