"""U-ViT (tokens for time / label / caption / clean frames, long skips) and the ablation runner."""

import json
import math

import pytest
import torch

from sora_mini.evaluate import PSNR_CAP_DB
from sora_mini.models import UViT, given_tokens, pack_like
from sora_mini.patches import pack_latents
from sora_mini.studies.frame_conditioning import (
    AblationConfig,
    frame_mask,
    gap,
    leader,
    results_table,
    run_ablation,
    summarize,
)


def randomized(model):
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    return model.eval()


@pytest.mark.parametrize("kw", [{}, {"num_classes": 5}, {"text_dim": 8, "max_text_tokens": 4},
                                {"frame_cond": "token_concat", "mlp_time_embed": True}])
def test_packed_equals_plain(kw):
    torch.manual_seed(0)
    model = randomized(UViT(in_channels=3, hidden_size=32, depth=4, num_heads=2, **kw))
    xs = [torch.randn(3, 4, 4, 6), torch.randn(3, 2, 6, 4), torch.randn(3, 3, 2, 2)]
    t, y = torch.tensor([100.0, 900.0, 400.0]), torch.tensor([1, 2, 3])
    text, tmask = torch.randn(3, 4, 8), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).bool()
    conds = [torch.randn_like(x) for x in xs]
    frames = [torch.tensor([1, 1, 0, 0]).bool(), torch.tensor([1, 0]).bool(), torch.tensor([0, 0, 0]).bool()]
    packed = pack_latents(xs, (1, 2, 2), max_len=40)
    pk = {}
    if "num_classes" in kw:
        pk["y"] = y
    if "text_dim" in kw:
        pk.update(text=text, text_mask=tmask)
    if "frame_cond" in kw:
        pk.update(cond=pack_like(packed, conds), cond_given=given_tokens(packed, frames))
    with torch.no_grad():
        outs, _ = packed.unpatchify(model.forward_packed(packed, t, **pk))
        for i, x in enumerate(xs):
            k1 = {}
            if "num_classes" in kw:
                k1["y"] = y[i:i + 1]
            if "text_dim" in kw:
                k1["text"] = text[i:i + 1, : int(tmask[i].sum())]
            if "frame_cond" in kw:
                k1.update(cond=conds[i][None], cond_frames=frames[i][None])
            assert torch.allclose(outs[i], model(x[None], t[i:i + 1], **k1)[0], atol=1e-5)


def test_long_skips_pair_first_in_block_with_last_out_block():
    model = randomized(UViT(in_channels=3, hidden_size=32, depth=6, num_heads=2))
    assert len(model.in_blocks) == len(model.out_blocks) == 3 and model.mid_block.skip_linear is None
    assert all(b.skip_linear.in_features == 64 for b in model.out_blocks)
    seen = {}
    model.in_blocks[0].register_forward_hook(lambda m, a, out: seen.__setitem__("first_in", out))
    model.out_blocks[-1].register_forward_pre_hook(lambda m, args: seen.__setitem__("last_skip", args[2]))
    model(torch.randn(1, 3, 2, 4, 4), torch.tensor([10.0]))
    assert torch.equal(seen["first_in"], seen["last_skip"])


def test_time_is_a_token():
    model = randomized(UViT(in_channels=3, hidden_size=32, depth=2, num_heads=2))
    x = torch.randn(1, 3, 2, 4, 4)
    assert model.extras == 1
    assert not torch.allclose(model(x, torch.tensor([10.0])), model(x, torch.tensor([900.0])))


def test_uvit_bad_input():
    model = UViT(in_channels=3, hidden_size=32, depth=2, num_heads=2)
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\]"):
        model(torch.randn(1, 4, 2, 4, 4), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="allowed 'none', 'token_concat'"):
        UViT(frame_cond="adaln")


def test_ablation_runs_end_to_end_and_is_json():
    acfg = AblationConfig(steps=2, batch_size=2, seeds=(0,), train_videos=4, eval_videos=2, sample_steps=1,
                          modes=("token_concat", "adaln"), hidden_size=32, depth=1, num_heads=2)
    results = run_ablation(acfg, progress=False)
    json.dumps(results)
    rows = {r["mode"]: r for r in summarize(results)}
    assert set(rows) == {"token_concat", "adaln"}
    for r in rows.values():
        assert len(results["arms"][r["mode"]][0]["loss"]) == 2
        assert 0 < r["psnr"] < 100 and -1 <= r["ssim"] <= 1 and r["psnr_std"] == 0
        assert math.isfinite(r["psnr_1frame"])
    assert results["copy_last_frame"]["psnr"] <= PSNR_CAP_DB  # identical frames are capped, not inf
    assert results["truth"]["psnr"] == PSNR_CAP_DB and results["truth"]["ssim"] == 1.0
    assert results["copy_first_frame"]["psnr"] <= results["copy_last_frame"]["psnr"] + 1e-9  # older frame
    assert {"physics", "adherence", "motion_adherence", "consistency"} <= set(rows["adaln"])
    world = ("physics", "adherence", "motion_adherence", "consistency")
    assert all(results["pure_noise"][k] == 0 for k in world)  # nothing credible shown scores 0
    for name in ("noise_after_given", "noise_after_first"):
        assert results[name]["psnr"] < results["copy_last_frame"]["psnr"]
    table = results_table(results).splitlines()
    assert len(table) == 2 + 2 + 4  # header, 2 ways, 4 reference rows
    best = max(rows.values(), key=lambda r: r["psnr"])["mode"]
    assert table[2].startswith(f"| {best} |")  # best PSNR first
    assert "± " in table[2] and "*pure noise*" in table[-1] and "final loss" in table[0]
    one = results_table(results, given=1)
    assert "*copy first frame*" in one and "final loss" not in one
    with pytest.raises(ValueError, match="given"):
        results_table(results, given=2)


def test_a_winner_needs_a_gap_beyond_the_spread():
    rows = [{"mode": "a", "psnr": 10.0, "psnr_std": 0.5}, {"mode": "b", "psnr": 9.0, "psnr_std": 0.6},
            {"mode": "c", "psnr": 8.0, "psnr_std": 0.1}]
    top = leader(rows)
    assert (top["a"], top["b"]) == ("a", "b") and top["gap"] == 1.0 and not top["separated"]  # 1.0 < 1.1
    assert gap(rows, "a", "c")["separated"] and gap(rows, "c", "a")["gap"] == -2.0
    low = leader([{**r, "psnr_std": 0.0} for r in rows], higher=False)
    assert (low["a"], low["separated"]) == ("c", True)


def test_frame_mask_convention():
    m = frame_mask(2, 5, 2)
    assert m.tolist() == [[False, False, True, True, True]] * 2  # True = generated, as the objective wants
