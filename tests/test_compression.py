"""The video autoencoders: shapes at every allowed size, size errors, causality, images (T = 1)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_mini.compression import AutoencoderConfig, VideoAutoencoder
from sora_mini.compression.layers import CausalConv3d

torch.set_num_threads(1)


def small_model(arch="3d", bottleneck="kl", sf=4, tf=2, patch=2, channels=4, **kw):
    torch.manual_seed(0)
    tf = 1 if arch == "2d" else tf
    cfg = AutoencoderConfig(arch=arch, bottleneck=bottleneck, spatial_factor=sf, temporal_factor=tf,
                            latent_channels=channels, base_channels=4, patch=patch,
                            fsq_levels=(3,) * channels, codebook_size=16, **kw)
    return VideoAutoencoder(cfg).eval()


MODELS = {}


def cached(arch, bottleneck, sf, tf, patch):
    key = (arch, bottleneck, sf, tf, patch)
    if key not in MODELS:
        MODELS[key] = small_model(arch, bottleneck, sf, tf, patch)
    return MODELS[key]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=st.sampled_from(["2d", "3d"]), bottleneck=st.sampled_from(["kl", "vq", "fsq"]),
       sf=st.sampled_from([4, 8]), tf=st.sampled_from([2, 4]), patch=st.sampled_from([1, 2]),
       n_time=st.integers(0, 3), hm=st.integers(1, 3), wm=st.integers(1, 3))
def test_shapes_for_every_allowed_size(arch, bottleneck, sf, tf, patch, n_time, hm, wm):
    model = cached(arch, bottleneck, sf, tf, patch)
    k = model.temporal_factor
    t, h, w = 1 + n_time * k, hm * sf, wm * sf
    x = torch.rand(1, 3, t, h, w) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z)
        out = model(x)
    expected = (1, model.latent_channels, 1 + (t - 1) // k, h // sf, w // sf)
    assert tuple(z.shape) == expected == (1, *model.latent_shape(t, h, w))
    assert tuple(y.shape) == tuple(x.shape) == tuple(out.recon.shape)
    assert model.compression_ratio(t, h, w) == pytest.approx(3 * t * h * w / (z.numel()))


@pytest.mark.parametrize("size,hint", [((9, 30, 32), "28 or 32"), ((9, 32, 2), "4"),
                                       ((9, 36, 42), "40 or 44")])
def test_bad_spatial_size_names_nearest_valid(size, hint):
    model = cached("3d", "kl", 4, 2, 2)
    with pytest.raises(ValueError, match=hint):
        model.encode(torch.zeros(1, 3, *size))


def test_bad_duration_names_nearest_valid():
    model = cached("3d", "kl", 4, 4, 2)
    with pytest.raises(ValueError, match="5 or 9 frames"):
        model.encode(torch.zeros(1, 3, 8, 16, 16))
    # the 2D per-frame model takes any number of frames
    flat = cached("2d", "kl", 4, 1, 2)
    assert flat.encode(torch.zeros(1, 3, 8, 16, 16)).shape[2] == 8


@pytest.mark.parametrize("tf,time_patch", [(2, 2), (4, 2), (4, 4)])
def test_time_patch_shapes_and_errors(tf, time_patch):
    """A time patch is part of the temporal factor: the latent has 1 + (T-1)/tf frames either way."""
    model = small_model("3d", "kl", tf=tf, time_patch=time_patch)
    for t in (1, 1 + tf, 1 + 3 * tf):
        x = torch.rand(1, 3, t, 16, 24) * 2 - 1
        z = model.encode(x)
        assert tuple(z.shape) == (1, 4, 1 + (t - 1) // tf, 4, 6)
        assert model.decode(z).shape == x.shape
    with pytest.raises(ValueError, match="time_patch 8 is larger"):
        small_model("3d", "kl", tf=4, time_patch=8)
    with pytest.raises(ValueError, match="time_patch 1"):
        AutoencoderConfig(arch="2d", temporal_factor=1, time_patch=2)


@pytest.mark.parametrize("tf", [2, 4])
def test_depth_to_time_upsampling_starts_as_repeat(tf):
    """With the repeat model's weights copied into both halves, the depth-to-time decoder decodes the
    same video at init (each conv starts from the newest frame only), and the pair's frames can
    then be told apart by training."""
    rep = small_model("3d", "kl", tf=tf)
    d2t = small_model("3d", "kl", tf=tf, temporal_upsample="depth_to_time")
    ups = [m for m in d2t.decoder.modules() if getattr(m, "mode", None) == "depth_to_time"]
    assert len(ups) == tf.bit_length() - 1  # one per halving of time
    for up in ups:  # its own init: both frames of a pair start with the same weights
        assert torch.equal(up.conv.conv.weight[0::2], up.conv.conv.weight[1::2])
    state = rep.state_dict()
    for name, p in d2t.state_dict().items():
        src = state[name]
        if p.shape != src.shape:  # the upsampling conv: 2 Co outputs, channel 2c + i = channel c of frame i
            src = src.repeat_interleave(2, dim=0)
        p.copy_(src)
    z = torch.randn(1, 4, 3, 4, 4)
    torch.testing.assert_close(d2t.decode(z), rep.decode(z))
    with pytest.raises(ValueError, match="depth_to_time"):
        AutoencoderConfig(temporal_upsample="linear")


def test_time_unshuffle_is_a_lossless_causal_reshape():
    from sora_mini.compression.networks import time_shuffle, time_unshuffle

    x = torch.randn(2, 3, 9, 4, 4)
    g = time_unshuffle(x, 4)  # [2, 12, 3, 4, 4]: group 0 = frame 0 alone, then frames 1-4, 5-8
    assert g.shape == (2, 12, 3, 4, 4)
    assert torch.equal(time_shuffle(g, 4), x)
    assert torch.equal(g[:, 2 * 4 + 3, 1], x[:, 2, 4])  # channel (c, pt) = (2, 3) of group 1 = frame 4
    for j in range(3):  # every channel of group 0 is a copy of frame 0
        assert torch.equal(g[:, j * 4:(j + 1) * 4, 0], x[:, j:j + 1, 0].expand(-1, 4, -1, -1))


def test_native_aspect_ratios_need_no_resizing():
    model = cached("3d", "fsq", 4, 2, 2)
    for t, h, w in [(9, 36, 64), (9, 64, 36), (1, 48, 48)]:
        x = torch.rand(1, 3, t, h, w) * 2 - 1
        assert model.reconstruct(x).shape == x.shape


@pytest.mark.parametrize("tf,time_patch", [(2, 1), (4, 1), (2, 2), (4, 2), (4, 4)])
@pytest.mark.parametrize("bottleneck", ["kl", "vq"])
def test_encoder_is_causal(tf, time_patch, bottleneck):
    """Changing frame k leaves the latents of every latent frame before k's unchanged (with
    strided causal convolutions, with a lossless time patch, or both)."""
    model = small_model("3d", bottleneck, tf=tf, time_patch=time_patch)
    with torch.no_grad():  # the init ignores past frames (and zero-inits residual branches): perturb
        for p in model.parameters():  # every weight so that each causal tap really is in play
            p.add_(0.1 * torch.randn_like(p))
    if bottleneck == "vq":  # give the codebook data-dependent codes first
        model.train()(torch.randn(1, 3, 1 + 2 * tf, 16, 16))
        model.eval()
    T = 1 + 3 * tf
    x = torch.rand(1, 3, T, 16, 16) * 2 - 1
    z = model.encode(x)
    for k in range(1, T):
        x2 = x.clone()
        x2[:, :, k] = torch.rand(3, 16, 16) * 2 - 1
        z2 = model.encode(x2)
        first_affected = (k - 1) // tf + 1  # latent frame j >= 1 covers frames (j-1) tf + 1 .. j tf
        assert torch.equal(z[:, :, :first_affected], z2[:, :, :first_affected]), k
        if bottleneck == "kl":  # (a quantizer may snap the changed latent to the same code)
            assert not torch.allclose(z[:, :, first_affected], z2[:, :, first_affected]), k


@pytest.mark.parametrize("time_patch,upsample", [(1, "repeat"), (2, "repeat"), (1, "depth_to_time")])
def test_decoder_is_causal(time_patch, upsample):
    model = small_model("3d", "kl", tf=2, time_patch=time_patch, temporal_upsample=upsample)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    z = torch.randn(1, 4, 4, 4, 4)
    y = model.decode(z)
    z2 = z.clone()
    z2[:, :, 2] += 1.0  # latent frame 2 stands for frames 3, 4
    y2 = model.decode(z2)
    assert torch.equal(y[:, :, :3], y2[:, :, :3])
    assert not torch.allclose(y[:, :, 3], y2[:, :, 3])


@pytest.mark.parametrize("arch", ["2d", "3d"])
def test_image_is_a_one_frame_video(arch):
    """T = 1 works, [B, 3, H, W] is taken as an image, and an image encodes like frame 0 of a video."""
    model = small_model(arch, "kl", tf=4)
    video = torch.rand(2, 3, 9, 16, 24) * 2 - 1
    z_video = model.encode(video)
    z_image = model.encode(video[:, :, 0])  # [B, 3, H, W]
    assert z_image.shape == (2, model.latent_channels, 1, 4, 6)
    torch.testing.assert_close(z_image, z_video[:, :, :1], rtol=1e-5, atol=1e-5)
    assert model.decode(z_image).shape == (2, 3, 1, 16, 24)


def test_causal_conv_pads_with_the_first_frame():
    conv = CausalConv3d(1, 1, kernel_size=(3, 1, 1))
    with torch.no_grad():
        conv.conv.weight.fill_(1.0)
        conv.conv.bias.zero_()
    x = torch.arange(4.0).view(1, 1, 4, 1, 1)  # frames 0, 1, 2, 3
    y = conv(x).flatten().tolist()
    assert y == [0.0 + 0 + 0, 0 + 0 + 1, 0 + 1 + 2, 1 + 2 + 3]


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="temporal_factor 1"):
        AutoencoderConfig(arch="2d", temporal_factor=2)
    with pytest.raises(ValueError, match="one level per latent channel"):
        AutoencoderConfig(bottleneck="fsq", latent_channels=3, fsq_levels=(8, 5, 5, 5))
    with pytest.raises(ValueError, match="power of 2"):
        VideoAutoencoder(AutoencoderConfig(spatial_factor=6))
