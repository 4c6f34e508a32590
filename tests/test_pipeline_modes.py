"""The prompting modes' invariants, at tiny (the model is barely trained: what is tested is what
must hold whatever it generates): the pixel <-> latent frame mapping at every temporal factor,
the given frames coming back, SDEdit at strength 0, inpainting unchanged outside its box, the
loop's seam measured, the input-size policy, each bad input's message, the per-position mask of
the plain forward, and two modes end to end from the command line.

Tolerances: a given frame comes back as the autoencoder's own reconstruction of the canvas, at
most 1 level of rounding: at the head of a clip because the latents are kept exactly and the
decoder is causal, at the tail (whose decoding would read the generated frames before it) because
the reconstruction's frames replace the decoded ones; the latents are kept exactly at both ends.
"""

import contextlib
import io
import json
import warnings

import numpy as np
import pytest
import torch

from sora_mini import cli
from sora_mini.evaluate.image_metrics import psnr
from sora_mini.modes import conditioning_masks, first_frame_psnr, loop_seam
from sora_mini.patches import latent_frame_of, latent_given, pixel_frames_of, pixel_given
from sora_mini.patches.patchify import pooled_latent
from sora_mini.pipeline import NoDenoisingStep, SoraMiniPipeline
from sora_mini.videoio import write_video
from sora_mini.world import render, sample_spec

KW = {"num_frames": 9, "num_inference_steps": 2, "seed": 0}
PROMPT = "a red circle moves right"


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir):
    return SoraMiniPipeline.from_pretrained(tiny_pipeline_dir)


@pytest.fixture(scope="module")
def clip():
    return render(sample_spec(3), 32, 32, 9)[0]  # uint8 [9, 32, 32, 3]


def max_diff(a, b) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


# ----------------------------------------------------------------------------------------------
# The frame mapping
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 4, 8])
def test_frame_mapping_is_exact_at_every_temporal_factor(k):
    for n in range(4):
        T = 1 + k * n
        groups = [[0]] + [list(range(1 + i * k, 1 + (i + 1) * k)) for i in range(n)]  # brute force
        assert [latent_frame_of(p, k) for p in range(T)] == [j for j, g in enumerate(groups) for _ in g]
        assert [list(pixel_frames_of(j, k)) for j in range(n + 1)] == groups
        # what a causal pooling "encoder" does: changing pixel frame p changes exactly its latent frame
        video = torch.zeros(1, T, 1, 1)
        for p in range(T):
            bumped = video.clone()
            bumped[:, p] = 1.0
            changed = (pooled_latent(bumped, 1, k) != pooled_latent(video, 1, k)).flatten()
            assert changed.nonzero().flatten().tolist() == [latent_frame_of(p, k)]
        rng = np.random.default_rng(k * 10 + n)
        for _ in range(5):
            given = rng.random(T) < 0.7
            assert latent_given(given, k).tolist() == [bool(given[g].all()) for g in groups]
            kept = pixel_given(latent_given(given, k), k)
            assert not (kept & ~given).any()  # nothing is kept that was not given


def test_the_real_encoder_is_causal_as_mapped(pipe, clip):
    k = pipe.vae.temporal_factor
    base = pipe.encode_video(clip)
    for p in (0, 3, 5, 8):
        bumped = clip.copy()
        bumped[p] = 255 - bumped[p]
        changed = (pipe.encode_video(bumped) - base).abs().amax(dim=(0, 1, 3, 4)) > 0
        assert int(changed.nonzero()[0]) == latent_frame_of(p, k)  # earlier latent frames untouched


def test_conditioning_masks_say_what_is_kept():
    m = conditioning_masks("extend", 17, 4, context_frames=7)  # 7 pixel frames given at the head
    assert m.latent.tolist() == [True, True, False, False, False]
    assert np.flatnonzero(m.kept).tolist() == [0, 1, 2, 3, 4] and np.flatnonzero(m.dropped).tolist() == [5, 6]
    back = conditioning_masks("extend", 17, 4, overlap=2, direction="backward")
    assert np.flatnonzero(back.kept).tolist() == list(range(9, 17)) and back.latent.tolist()[-2:] == [True, True]
    both = conditioning_masks("connect", 17, 4, overlap=1)
    assert both.latent.tolist() == [True, False, False, False, True]
    with pytest.raises(ValueError, match="no latent frame to generate"):
        conditioning_masks("connect", 5, 4)
    with pytest.raises(ValueError, match="fill no whole latent frame"):
        conditioning_masks("extend", 17, 4, context_frames=3, direction="backward")


def test_the_mask_figure_draws_every_mode():
    from sora_mini.viz import default_masks, plot_conditioning_masks

    fig = plot_conditioning_masks(17, 4)
    assert len(fig.axes) == len(default_masks(17, 4))


# ----------------------------------------------------------------------------------------------
# Given frames come back
# ----------------------------------------------------------------------------------------------
def test_image_to_video_keeps_the_first_frame(pipe, clip):
    out = pipe.image_to_video(PROMPT, clip[0], **KW)
    assert out.video.shape == (9, 32, 32, 3) and out.info["given_frames"] == [0]
    assert max_diff(out.video[0], pipe.reconstruct(clip[:1])[0, 0]) <= 1
    assert abs(first_frame_psnr(out.video, clip[0]) - float(psnr(pipe.reconstruct(clip[:1])[0], clip[:1])[0])) < 0.1


def test_extend_forward_and_backward_keep_the_clip(pipe, clip):
    fwd = pipe.extend(PROMPT, clip, direction="forward", overlap=2, **KW)
    assert fwd.info["given_frames"] == [0, 1, 2, 3, 4]  # the clip's last 5 frames open the new one
    assert max_diff(fwd.video[:5], pipe.reconstruct(clip[4:])[0]) <= 1
    back = pipe.extend(PROMPT, clip, direction="backward", overlap=2, **KW)
    assert back.info["given_frames"] == list(range(1, 9))  # the clip's first 8 frames close it
    canvas = np.concatenate([clip[:1], clip[:8]])  # frame 0 holds the first given frame
    known = pipe.encode_video(canvas)
    assert torch.equal(back.latents[:, :, 1:], known[:, :, 1:].cpu())  # the given latents exactly
    assert max_diff(back.video[1:], pipe.reconstruct(canvas)[0, 1:]) <= 1


def test_connect_starts_on_one_clip_and_ends_on_the_other(pipe, clip):
    other = clip[::-1].copy()
    out = pipe.connect(PROMPT, clip, other, overlap=1, **KW)
    assert out.info["given_frames"] == [0, 5, 6, 7, 8]
    assert max_diff(out.video[0], pipe.reconstruct(clip[-1:])[0, 0]) <= 1
    canvas = np.concatenate([clip[-1:]] * 5 + [other[:4]])
    assert max_diff(out.video[5:], pipe.reconstruct(canvas)[0, 5:]) <= 1
    assert torch.equal(out.latents[:, :, -1:], pipe.encode_video(canvas)[:, :, -1:].cpu())  # kept exactly


def test_long_video_joins_its_segments(pipe):
    out = pipe.long_video(PROMPT, segments=3, overlap=2, **KW)
    assert out.video.shape[0] == 9 + 2 * (9 - 5) and out.info["segment_starts"] == [0, 4, 8]
    assert out.info["given_frames"] == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------------------------
# Edit, inpaint, loop
# ----------------------------------------------------------------------------------------------
def test_strength_zero_returns_the_input(pipe, clip):
    same = pipe.edit(PROMPT, clip, strength=0.0, **KW)
    assert np.array_equal(same.video, clip) and same.info["strength"] == 0.0
    kw = {**KW, "num_inference_steps": 4}
    near, far = pipe.edit(PROMPT, clip, strength=0.25, **kw), pipe.edit(PROMPT, clip, strength=1.0, **kw)
    assert psnr(near.video, clip).mean() > psnr(far.video, clip).mean()


def test_a_strength_below_one_step_warns_and_says_how_many_steps_ran(pipe, clip):
    kw = {**KW, "num_inference_steps": 8}
    with pytest.warns(NoDenoisingStep, match=r"strength 0.1 with 8 steps runs no denoising step.*10 or more"):
        none = pipe.edit(PROMPT, clip, strength=0.1, **kw)
    assert none.info["denoising_steps"] == 0
    reconstruction = pipe.edit(PROMPT, clip, strength=0.0, **kw)  # the input itself, not its reconstruction
    assert np.array_equal(none.video, pipe.decode_latents(pipe.encode_video(clip))[0])
    assert not np.array_equal(none.video, reconstruction.video)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoDenoisingStep)
        assert pipe.edit(PROMPT, clip, strength=0.25, **kw).info["denoising_steps"] == 2
    assert pipe(PROMPT, **kw).info["denoising_steps"] == 8


def test_inpainting_is_unchanged_outside_its_box(pipe):
    odd = render(sample_spec(5), 36, 42, 11)[0]  # cropped to 32 x 40 from (2, 1), 9 frames
    out = pipe.inpaint(PROMPT, odd, (10, 9, 22, 25), **KW)  # the input's pixels
    assert out.video.shape == (9, 32, 40, 3) and out.info["box"] == [8, 8, 20, 24]
    kept = odd[:9, 2:34, 1:41]
    outside = np.ones((32, 40), dtype=bool)
    outside[8:20, 8:24] = False
    assert np.array_equal(out.video[:, outside], kept[:, outside])
    assert not np.array_equal(out.video[:, ~outside], kept[:, ~outside])  # the box was regenerated


def test_loop_seam_is_measured(pipe):
    out = pipe.loop(PROMPT, **KW)
    assert out.video.shape[0] == 9 and out.info["source_frames"] == 5 and out.info["given_frames"] == [0, 5, 6, 7, 8]
    seam = out.info["seam"]
    assert set(seam) == {"seam", "median_step", "ratio"} and all(np.isfinite(list(seam.values())))


def test_loop_seam_function():
    wave = 127 + 100 * np.sin(np.arange(12) / 12 * 2 * np.pi)  # one period across 12 pixels
    pattern = np.broadcast_to(wave[None, :, None], (4, 12, 3)).round().astype(np.uint8)
    periodic = np.stack([np.roll(pattern, i, axis=1) for i in range(12)])  # one pixel a frame
    assert loop_seam(periodic)["ratio"] == pytest.approx(1.0)  # the seam is one more such step
    assert loop_seam(periodic[:6])["ratio"] > 3  # half a period: the seam jumps back 5 steps


# ----------------------------------------------------------------------------------------------
# Sizes and bad input
# ----------------------------------------------------------------------------------------------
def test_an_input_of_another_size_is_center_cropped(pipe):
    image = render(sample_spec(4), 34, 50, 1)[0][0]
    out = pipe.image_to_video(PROMPT, image, **KW)
    assert out.video.shape == (9, 32, 48, 3)
    assert max_diff(out.video[0], pipe.reconstruct(image[None, 1:33, 1:49])[0, 0]) <= 1
    with pytest.raises(ValueError, match="at least 8x8"):
        pipe.image_to_video(PROMPT, image[:6, :6], **KW)
    with pytest.raises(ValueError, match="height=40 differs from the image's 32"):
        pipe.image_to_video(PROMPT, image, height=40, **KW)


def test_bad_inputs_say_what_is_wrong(pipe, clip):
    with pytest.raises(ValueError, match="too short to extend forward"):
        pipe.extend(PROMPT, clip[:3], overlap=2, **KW)
    for strength in (-0.1, 1.5, "high"):
        with pytest.raises(ValueError, match=r"strength must be a number in \[0, 1\]"):
            pipe.edit(PROMPT, clip, strength=strength, **KW)
    with pytest.raises(ValueError, match="needs image; none was given"):
        pipe.generate("i2v", PROMPT, **KW)
    with pytest.raises(ValueError, match="needs video and video2"):
        pipe.generate("connect", PROMPT, **KW)
    with pytest.raises(ValueError, match="does not take image"):
        pipe.generate("extend", PROMPT, video=clip, image=clip[0], **KW)
    for box in ((0, 0, 40, 10), (10, 10, 5, 20), (-1, 0, 4, 4)):
        with pytest.raises(ValueError, match="outside the 32x32 frame"):
            pipe.inpaint(PROMPT, clip, box, **KW)
    with pytest.raises(ValueError, match="unknown mode"):
        pipe.generate("zoom", PROMPT)


# ----------------------------------------------------------------------------------------------
# The plain forward's per-position mask
# ----------------------------------------------------------------------------------------------
def test_cond_mask_equals_cond_frames_and_the_packed_given_tokens():
    from sora_mini.models import VideoDiT, pack_like
    from sora_mini.patches import pack_latents

    torch.manual_seed(0)
    model = VideoDiT(in_channels=3, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, frame_cond="in_place")
    for p in model.parameters():
        p.data.normal_(0, 0.05)
    x, cond, t = torch.randn(1, 3, 3, 4, 6), torch.randn(1, 3, 3, 4, 6), torch.tensor([700.0])
    frames = torch.tensor([[True, False, False]])
    with torch.no_grad():
        per_frame = model(x, t, cond=cond, cond_frames=frames)
        per_position = model(x, t, cond=cond, cond_mask=frames[:, :, None, None].expand(1, 3, 4, 6))
        assert torch.equal(per_frame, per_position)
        box = torch.ones(1, 3, 4, 6, dtype=torch.bool)
        box[:, :, 2:4, 0:4] = False  # 2 x 2 tokens generated in every frame
        plain = model(x, t, cond=cond, cond_mask=box)
        packed = pack_latents([x[0]], (1, 2, 2), max_len=24)
        given = torch.zeros(packed.segment_ids.shape, dtype=torch.bool)  # [1, 24]: 18 tokens, then padding
        given[0, :18] = box[0, :, ::2, ::2].reshape(-1)  # per token, t-major as patchify
        out = model.forward_packed(packed, t, cond=pack_like(packed, [cond[0]]), cond_given=given)
        assert torch.allclose(packed.unpatchify(out)[0][0], plain[0], atol=1e-5)
    half = box.clone()
    half[:, :, 2, 0] = True  # half a patch
    with pytest.raises(ValueError, match="whole patches"):
        model(x, t, cond=cond, cond_mask=half)
    with pytest.raises(ValueError, match="not both"):
        model(x, t, cond=cond, cond_frames=frames, cond_mask=box)


# ----------------------------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------------------------
def run_cli(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(argv)
    return json.loads(out.getvalue())


def test_cli_modes_end_to_end(tiny_pipeline_dir, clip, tmp_path):
    from PIL import Image

    from sora_mini.videoio import read_video

    Image.fromarray(clip[0]).save(tmp_path / "first.png")
    write_video(tmp_path / "clip.npz", clip)
    base = [PROMPT, "--model", str(tiny_pipeline_dir), "--frames", "9", "--steps", "2", "--device", "cpu"]
    i2v = run_cli(["sample", *base, "--mode", "i2v", "--image", str(tmp_path / "first.png"),
                   "--out", str(tmp_path / "i2v.npz")])
    assert i2v["mode"] == "i2v" and i2v["given_frames"] == [0] and i2v["size"] == [9, 32, 32]
    assert read_video(tmp_path / "i2v.npz").shape == (9, 32, 32, 3)
    inp = run_cli(["sample", *base, "--mode", "inpaint", "--video",
                   str(tmp_path / "clip.npz"), "--box", "8", "8", "16", "24", "--out", str(tmp_path / "inp.npz")])
    video = read_video(tmp_path / "inp.npz")
    outside = np.ones((32, 32), dtype=bool)
    outside[8:16, 8:24] = False
    assert inp["mode"] == "inpaint" and inp["box"] == [8, 8, 16, 24]
    assert np.array_equal(video[:, outside], clip[:, outside])


@pytest.mark.parametrize("extra,message", [
    (["--mode", "i2v"], "needs image"),
    (["--mode", "edit", "--video", "CLIP", "--strength", "2"], "strength must be a number in [0, 1]"),
    (["--mode", "inpaint", "--video", "CLIP", "--box", "0", "0", "99", "8"], "outside the 32x32 frame"),
])
def test_cli_bad_input_is_a_message_and_exit_2(tiny_pipeline_dir, clip, tmp_path, capsys, extra, message):
    write_video(tmp_path / "clip.npz", clip)
    extra = [str(tmp_path / "clip.npz") if a == "CLIP" else a for a in extra]
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["sample", PROMPT, "--model", str(tiny_pipeline_dir), "--steps", "1", "--device", "cpu",
                  "--out", str(tmp_path / "x.gif"), *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err and "Traceback" not in err
