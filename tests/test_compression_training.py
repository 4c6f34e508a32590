"""Autoencoder training, latent scaling, save -> load, metrics and the get-or-train artifact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sora_mini.artifacts import (
    autoencoder_config,
    autoencoder_dir,
    get_autoencoder,
    load_autoencoder,
    training_info,
    training_log,
)
from sora_mini.compression import AutoencoderConfig, VideoAutoencoder
from sora_mini.compression.data import smooth_random_video
from sora_mini.compression.metrics import (
    evaluate_autoencoder,
    flicker_breakdown,
    latent_noise_flicker,
    mean_flicker_breakdown,
    temporal_flicker,
)
from sora_mini.convert import model_to_video, video_to_model
from sora_mini.train import AutoencoderTraining, latent_scale_factor, train_autoencoder

torch.set_num_threads(1)


def tiny(bottleneck="kl", arch="3d"):
    torch.manual_seed(0)
    return VideoAutoencoder(AutoencoderConfig(arch=arch, bottleneck=bottleneck, temporal_factor=1 if arch == "2d" else 2,
                                              latent_channels=4, base_channels=8, codebook_size=32,
                                              fsq_levels=(5, 5, 5, 5)))


def test_overfit_one_video():
    """A tiny 3D KL autoencoder learns to reconstruct one video well (the loop and model work)."""
    video = smooth_random_video(5, 16, 16, seed=1).unsqueeze(0)  # [1, 3, 5, 16, 16]
    model = tiny("kl")
    before = evaluate_autoencoder(model, [video[0]])["psnr"]
    hist = train_autoencoder(model, lambda step: video, AutoencoderTraining(steps=100, lr=3e-3, crop=None),
                             progress=False).history
    after = evaluate_autoencoder(model, [video[0]])["psnr"]
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert after > 28.0 and after > before + 10, (before, after)


@pytest.mark.parametrize("bottleneck", ["kl", "vq", "fsq"])
def test_save_then_load_gives_identical_outputs(tmp_path, bottleneck):
    model = tiny(bottleneck)
    x = smooth_random_video(5, 16, 24).unsqueeze(0)
    model.train()(x)  # one training forward: VQ codebook init and EMA buffers change
    model.eval()
    model.set_scale_factor(0.7)
    model.save_pretrained(tmp_path / "ae")
    loaded = VideoAutoencoder.from_pretrained(tmp_path / "ae")
    assert loaded.config == model.config and not loaded.training
    assert loaded.scale_factor.item() == pytest.approx(0.7)  # the scale factor is part of the weights
    assert torch.equal(loaded.encode(x), model.encode(x))
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))


def _saved(tmp_path):
    model = tiny("kl")
    model.save_pretrained(tmp_path / "ae")
    return tmp_path / "ae"


def _edit_config(folder, edit):
    path = folder / "config.json"
    payload = json.loads(path.read_text())
    edit(payload["config"])
    path.write_text(json.dumps(payload))


def test_a_config_with_an_unknown_or_missing_key_is_refused(tmp_path):
    folder = _saved(tmp_path)
    _edit_config(folder, lambda c: c.update(new_knob=3))
    with pytest.raises(ValueError, match="new_knob"):
        VideoAutoencoder.from_pretrained(folder)
    folder = _saved(tmp_path / "again")
    _edit_config(folder, lambda c: c.pop("kl_weight"))
    with pytest.raises(ValueError, match="kl_weight"):
        VideoAutoencoder.from_pretrained(folder)
    assert not hasattr(AutoencoderConfig, "from_dict")  # no lenient loader next to the strict one


def test_weights_of_another_shape_or_a_truncated_file_are_refused(tmp_path):
    folder = _saved(tmp_path)
    _edit_config(folder, lambda c: c.update(base_channels=16))  # the saved weights are 8 wide
    with pytest.raises(ValueError, match=r"other shapes: encoder\.\S+"):
        VideoAutoencoder.from_pretrained(folder)
    folder = _saved(tmp_path / "again")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated or damaged"):
        VideoAutoencoder.from_pretrained(folder)


def test_scale_factor_gives_unit_variance_latents_and_leaves_the_model():
    model = tiny("kl").eval()
    videos = [smooth_random_video(5, 16, 16, seed=s) for s in range(4)]
    before = model.encode(videos[0].unsqueeze(0))
    s = latent_scale_factor(model, videos)
    assert model.scale_factor.item() == 1.0 and torch.equal(model.encode(videos[0].unsqueeze(0)), before)
    model.set_scale_factor(s)
    z = torch.cat([model.encode(v.unsqueeze(0)).flatten() for v in videos])
    assert z.std().item() == pytest.approx(1.0, rel=1e-4)
    # a batch [B, 3, T, H, W] gives the same factor as the list; videos of other sizes are fine
    assert latent_scale_factor(model, torch.stack(videos)) == pytest.approx(s, rel=1e-6)
    mixed = [smooth_random_video(1, 16, 24), smooth_random_video(9, 8, 16)]
    assert latent_scale_factor(model, mixed) > 0
    # decode undoes the scale: same video as decoding the raw latent
    x = videos[0].unsqueeze(0)
    torch.testing.assert_close(model.decode(model.encode(x)), model.decode_unscaled(model.encode_unscaled(x)))
    with pytest.raises(ValueError, match="finite positive"):
        model.set_scale_factor(float("nan"))


def test_uint8_round_trip_and_flicker():
    video = (np.random.default_rng(0).random((5, 8, 8, 3)) * 255).astype(np.uint8)
    x = video_to_model(video)
    assert x.shape == (1, 3, 5, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert np.array_equal(model_to_video(x[0]), video)
    assert temporal_flicker(video, video) == 0.0
    # a constant offset on every frame is not flicker (though every pixel is wrong); one changed frame is
    mid = (video // 2 + 60).astype(np.uint8)  # values in [60, 187], room to shift without clipping
    shifted = mid + np.uint8(10)
    assert np.abs(shifted.astype(int) - mid).min() == 10 and temporal_flicker(mid, shifted) == 0.0
    jumpy = video.copy()
    jumpy[2] = 255 - jumpy[2]
    assert temporal_flicker(video, jumpy) > 10
    with pytest.raises(ValueError, match="2 frames"):
        temporal_flicker(video[:1], video[:1])


def test_flicker_breakdown_finds_still_pixels_and_group_seams():
    video = np.full((5, 4, 4, 3), 100, np.uint8)
    video[:, 0, 0] = np.arange(5)[:, None] * 20  # one moving pixel, the rest is a still background
    shimmer = video.copy()
    shimmer[3, 2, 2] += 9  # a still pixel that changes in frame 3 only
    b = flicker_breakdown(video, shimmer, temporal_factor=2)
    assert b["static_share"] == 1.0 and b["flicker"] == temporal_flicker(video, shimmer)
    # frames 0 | 1 2 | 3 4 with k = 2: pairs (0,1) and (2,3) cross latent frames, (1,2) and (3,4) do not
    assert b["across"] == pytest.approx(9 / 16 / 2) and b["within"] == pytest.approx(9 / 16 / 2)  # 1 of 16 px
    seam = video.copy()
    seam[3:, 0, 0] += 5  # frames 3-4 are offset: only the (2, 3) difference is wrong
    b = flicker_breakdown(video, seam, temporal_factor=2)
    assert b["static_share"] == 0.0 and b["within"] == 0.0 and b["across"] > 0
    assert np.isnan(flicker_breakdown(video, seam, temporal_factor=1)["within"])


def test_latent_noise_flicker_is_reconstruction_at_zero_and_seeded():
    model = tiny("kl").eval()
    videos = [smooth_random_video(5, 16, 16, seed=s) for s in range(2)]
    clean = evaluate_autoencoder(model, videos)
    zero = latent_noise_flicker(model, videos, 0.0)
    assert mean_flicker_breakdown(model, videos)["flicker"] == pytest.approx(clean["flicker"])
    with pytest.raises(ValueError, match="2 frames"):
        mean_flicker_breakdown(model, [v[:, :1] for v in videos])
    assert zero["flicker"] == pytest.approx(clean["flicker"]) and zero["psnr"] == pytest.approx(clean["psnr"])
    a, b = latent_noise_flicker(model, videos, 0.5, seed=1), latent_noise_flicker(model, videos, 0.5, seed=1)
    assert a == b and a["flicker"] != zero["flicker"]


def test_metrics_of_a_quantized_model_report_rate_and_usage():
    model = tiny("vq").eval()
    videos = [smooth_random_video(5, 16, 16, seed=s) for s in range(2)]
    out = evaluate_autoencoder(model, videos)
    # 3 latent frames x 4 x 4 positions of log2(32) = 5 bits over 5 x 16 x 16 pixels
    assert out["bits_per_pixel"] == pytest.approx(5 * 3 * 4 * 4 / (5 * 16 * 16))
    assert 0 < out["codebook_usage"] <= 1 and out["perplexity"] >= 1
    assert out["compression_ratio"] == pytest.approx(3 * 5 * 16 * 16 / (4 * 3 * 4 * 4))


def test_configs_at_a_scale_share_one_latent_size():
    c3, c2 = autoencoder_config("small", "3d_kl"), autoencoder_config("small", "2d_kl")
    m3, m2 = VideoAutoencoder(c3), VideoAutoencoder(c2)
    t, h, w = 33, 32, 32
    n3, n2 = np.prod(m3.latent_shape(t, h, w)), np.prod(m2.latent_shape(t, h, w))
    assert abs(n3 - n2) / n3 < 0.15  # 1 + (T-1)/k latent frames vs T, channels scaled by k
    fsq = autoencoder_config("small", "3d_fsq")
    assert len(fsq.fsq_levels) == fsq.latent_channels == c3.latent_channels


def test_get_autoencoder_trains_once_then_loads(tmp_path):
    m1 = get_autoencoder("tiny", kind="2d_fsq", run_root=tmp_path, progress=False, steps=4)
    folder = autoencoder_dir("tiny", kind="2d_fsq", run_root=tmp_path, steps=4)
    assert folder.parent == tmp_path / "tiny" and folder.name.startswith("autoencoder_2d_fsq-")
    assert {"config.json", "model.safetensors", "training.json", "trainer.safetensors", "trainer.json",
            "log.jsonl"} <= {p.name for p in folder.iterdir()}
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    m2 = get_autoencoder("tiny", kind="2d_fsq", run_root=tmp_path, steps=4)
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp  # not retrained
    x = smooth_random_video(5, 32, 32).unsqueeze(0)
    assert torch.equal(m1.encode(x), m2.encode(x))
    info = training_info(folder)
    assert info["kind"] == "2d_fsq" and info["steps"] == 4 and info["training"]["steps"] == 4
    assert m2.scale_factor.item() == pytest.approx(info["scale_factor"]) and info["scale_factor"] != 1.0
    assert [row["step"] for row in training_log(folder)][-1] == 4
    assert not hasattr(m2, "train_info")
    with pytest.raises(FileNotFoundError, match="get_autoencoder"):
        load_autoencoder("tiny", kind="3d_vq", run_root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no trained autoencoder"):
        load_autoencoder(tmp_path / "tiny")
    with pytest.raises(ValueError, match="unknown autoencoder kind"):
        load_autoencoder("tiny", kind="3d_lfq", run_root=tmp_path)


def test_a_config_change_trains_a_new_folder_and_keeps_the_old(tmp_path):
    get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, progress=False, steps=2)
    get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, progress=False, steps=3)
    first = autoencoder_dir("tiny", kind="2d_kl", run_root=tmp_path, steps=2)
    second = autoencoder_dir("tiny", kind="2d_kl", run_root=tmp_path, steps=3)
    assert first != second and training_info(first)["steps"] == 2 and training_info(second)["steps"] == 3
    assert {p.name for p in (tmp_path / "tiny").iterdir()} == {first.name, second.name}
    # a change of the model config (a study's override) is a new folder too
    import dataclasses

    from sora_mini.config import get_config

    cfg = get_config("tiny")
    wider = dataclasses.replace(cfg, compression=dataclasses.replace(cfg.compression, base_channels=16))
    assert autoencoder_dir(wider, kind="2d_kl", run_root=tmp_path, steps=2) != first


def test_a_damaged_part_says_to_retrain_and_retrain_starts_over(tmp_path):
    get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, progress=False, steps=2)
    folder = autoencoder_dir("tiny", kind="2d_kl", run_root=tmp_path, steps=2)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match="truncated or damaged.*retrain=True"):
        get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, steps=2)
    model = get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, progress=False, retrain=True, steps=2)
    assert torch.isfinite(model.encode(smooth_random_video(1, 32, 32).unsqueeze(0))).all()


def test_world_batches_are_deterministic_crops_of_native_videos():
    from sora_mini.compression.data import WorldBatches
    from sora_mini.config import get_config

    world = get_config("tiny").world
    batches = WorldBatches(world, batch_size=2, seed=3, spatial_factor=4, temporal_factor=4,
                           crop=(5, 32, 32))
    for step in range(6):
        x = batches(step)
        b, c, t, h, w = x.shape
        assert (b, c) == (2, 3) and t in (1, 5) and h <= 32 and w <= 32 and h % 4 == 0 == w % 4
        assert x.min() >= -1 and x.max() <= 1
        assert torch.equal(x, batches(step))  # a resumed run sees the same batch
    from sora_mini.config import step_seed

    assert step_seed(3, 5) == 3 * 1_000_003 + 5  # the batch seed of every data(step); figures depend on it
    full = WorldBatches(world, batch_size=2, seed=3, spatial_factor=4, temporal_factor=4)
    sizes = {tuple(full(s).shape[2:]) for s in range(12)}
    assert any(h > 32 or w > 32 for _, h, w in sizes)  # without a crop: native sizes


def test_temporal_loss_term_penalises_only_changes_between_frames():
    from sora_mini.train.autoencoder import reconstruction_loss

    model = tiny("kl", "2d").eval()
    image = smooth_random_video(1, 16, 16, seed=1)[None]  # [1, 3, 1, H, W]: no frame differences
    torch.manual_seed(0)
    base, _ = reconstruction_loss(model, image, temporal_weight=0.0)
    torch.manual_seed(0)
    with_t, _ = reconstruction_loss(model, image, temporal_weight=5.0)
    assert torch.allclose(base, with_t)
    video = smooth_random_video(5, 16, 16, seed=2)[None]
    torch.manual_seed(0)
    base, _ = reconstruction_loss(model, video, temporal_weight=0.0)
    torch.manual_seed(0)
    with_t, _ = reconstruction_loss(model, video, temporal_weight=1.0)
    assert with_t > base  # an untrained model does not change between frames as the video does


def test_an_ema_recipe_saves_the_ema_weights_as_the_model(tmp_path):
    from sora_mini.checkpoint import load_checkpoint

    model = get_autoencoder("tiny", kind="2d_kl", run_root=tmp_path, progress=False, steps=3, ema_decay=0.9)
    folder = autoencoder_dir("tiny", kind="2d_kl", run_root=tmp_path, steps=3, ema_decay=0.9)
    state, _, meta = load_checkpoint(folder / "trainer")
    assert meta["ema_updates"] == 3 and training_info(folder)["ema"] is True
    saved = model.state_dict()
    name = "encoder.conv_out.weight"
    assert torch.equal(saved[name], state[f"ema/{name}"]) and not torch.equal(saved[name], state[f"model/{name}"])
