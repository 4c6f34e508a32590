"""The evaluator's API: float ranges, batched PSNR / SSIM, one PSNR cap, its imports."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch

import sora_mini.evaluate as E
from sora_mini.evaluate import PSNR_CAP_DB, evaluate, evaluate_video, psnr, ssim
from sora_mini.world import render, sample_spec
from sora_mini.world.captions import detailed_caption
from sora_mini.world.spec import ObjectSpec, SceneSpec

SPEC = SceneSpec(
    [ObjectSpec("square", "orange", region="left", motion="move", direction="right",
                speed="slowly")],
    background="gray",
).validate()


def test_evaluate_video_reads_model_range_by_default():
    """A decoder's [-1, 1] float video [3, T, H, W] scores as its uint8 twin (the old default
    (0, 1) clipped every negative value: wrong colours, wrong background)."""
    video, _ = render(SPEC, 32, 32, 9)
    as_float = torch.tensor(video).permute(3, 0, 1, 2).float() / 127.5 - 1.0
    caption = detailed_caption(SPEC)
    got = evaluate_video(as_float, caption)
    assert got["adherence"]["overall"] == 1.0
    assert got["adherence"] == evaluate(video, caption)["adherence"]
    unit = evaluate_video(video / 255.0, caption, value_range=(0, 1))
    assert unit["adherence"]["overall"] == 1.0


def test_evaluate_video_clips_overshoot_and_rejects_a_wrong_range():
    video, _ = render(SPEC, 32, 32, 9)
    x = video.astype(np.float32) / 127.5 - 1.0
    over = np.where(x > 0.9, x + 0.06, x)  # a decoder's overshoot: clipped, and said so
    got = evaluate_video(over, detailed_caption(SPEC))
    assert got["adherence"]["overall"] == 1.0
    assert got["input"]["clipped"] == pytest.approx(np.mean(np.abs(over) > 1))
    assert got["input"]["clipped"] > 0
    assert evaluate_video(x, detailed_caption(SPEC))["input"]["clipped"] == 0.0
    with pytest.raises(ValueError, match="value_range"):  # float pixels 0..255 given as [-1, 1]
        evaluate_video(video.astype(np.float32), detailed_caption(SPEC))


def test_psnr_and_ssim_take_a_batch():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (2, 3, 16, 16, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 31, a.shape), 0, 255).astype(np.uint8)
    per = psnr(a, b)
    assert per.shape == (2, 3)
    np.testing.assert_allclose(per, np.stack([psnr(a[i], b[i]) for i in range(2)]))
    np.testing.assert_allclose(psnr(a, b, reduction="mean"), per.mean(1))
    assert psnr(a[0], b[0], reduction="mean") == pytest.approx(per[0].mean())
    s = ssim(a, b, data_range=255)
    assert s.shape == (2, 3)
    np.testing.assert_allclose(s[1], ssim(a[1], b[1]))
    with pytest.raises(ValueError, match="reduction"):
        psnr(a, b, reduction="sum")


def test_psnr_caps_identical_frames_at_one_constant():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (4, 8, 8, 3)).astype(np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] ^= 1  # one level off in one pixel: the highest finite PSNR of such frames
    got = psnr(a, b)
    assert (got[1:] == PSNR_CAP_DB).all()
    assert np.isfinite(got[0]) and got[0] < PSNR_CAP_DB
    assert np.isinf(psnr(a, a, cap=None)).all()


FORBIDDEN = ("sora_mini.viz", "sora_mini.train", "sora_mini.models", "sora_mini.compression",
             "sora_mini.diffusion")
ALLOWED = ("sora_mini.evaluate", "sora_mini.world.spec", "sora_mini.world.captions",
           "sora_mini.world.render", "sora_mini.convert")


@pytest.mark.parametrize("path", sorted(Path(E.__file__).parent.glob("*.py")), ids=lambda p: p.name)
def test_the_evaluator_imports_only_the_world_and_convert(path):
    """The instrument never depends on the display layer, the models or training."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    ours = [n for n in names if n.startswith("sora_mini")]
    assert not [n for n in ours if n.startswith(FORBIDDEN)], ours
    if path.name != "validate.py":  # it renders and samples ground truth: all of sora_mini.world
        assert all(n.startswith(ALLOWED) for n in ours), ours


def test_exports():
    for name in E.__all__:
        assert getattr(E, name) is not None, name
    assert E.validate_evaluator(n=2, frames=(5,), verbose=False).n == 2
    assert sample_spec(0)  # the exported evaluate works on a sampled spec too
