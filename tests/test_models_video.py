"""Video DiT: packed == plain for every attention / conditioning choice, factorized attention's
reach, the frame-conditioning contracts, and clear errors."""

import pytest
import torch
from timm.models.vision_transformer import Attention

from sora_mini.config import get_config
from sora_mini.models import (
    FRAME_CONDITIONING,
    TEXT_CONDITIONING,
    VideoDiT,
    build_video_dit,
    dit,
    given_tokens,
    pack_like,
    video_dit,
)
from sora_mini.models.attention import MaskedAttention, TokenGroups, factorized_keys
from sora_mini.patches import pack_latents

COMBOS = [(a, f, t) for a in ("full", "factorized") for f in FRAME_CONDITIONING for t in TEXT_CONDITIONING
          if not (t == "joint" and (a == "factorized" or f == "cross_attn"))]


def randomized(model, std=0.05):
    """Weights off their zero init, so outputs depend on every input."""
    for p in model.parameters():
        if p.requires_grad:
            p.data.normal_(0, std)
    return model.eval()


def small(attention="full", frame_cond="none", text_cond="none", depth=2):
    return VideoDiT(in_channels=3, patch_size=(1, 2, 2), hidden_size=32, depth=depth, num_heads=2,
                    attention=attention, frame_cond=frame_cond, text_cond=text_cond, text_dim=8)


@pytest.mark.parametrize("attention,frame_cond,text_cond", COMBOS)
def test_packed_equals_plain(attention, frame_cond, text_cond):
    torch.manual_seed(0)
    model = randomized(small(attention, frame_cond, text_cond))
    xs = [torch.randn(3, 4, 4, 6), torch.randn(3, 2, 6, 4), torch.randn(3, 3, 2, 2)]
    conds = [torch.randn_like(x) for x in xs]
    frames = [torch.tensor([True, True, False, False]), torch.tensor([True, False]), torch.tensor([False] * 3)]
    t = torch.tensor([100.0, 900.0, 400.0])
    text, tmask = torch.randn(3, 4, 8), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]]).bool()
    packed = pack_latents(xs, (1, 2, 2), max_len=40)  # 24 + 12 tokens share a row, 3 go to a padded one
    kw = {}
    if frame_cond != "none":
        kw.update(cond=pack_like(packed, conds), cond_given=given_tokens(packed, frames))
    if text_cond != "none":
        kw.update(text=text, text_mask=tmask)
    with torch.no_grad():
        outs, _ = packed.unpatchify(model.forward_packed(packed, t, **kw))
        for i, x in enumerate(xs):
            kw1 = {}
            if frame_cond != "none":
                kw1.update(cond=conds[i][None], cond_frames=frames[i][None])
            if text_cond != "none":
                kw1.update(text=text[i:i + 1, : int(tmask[i].sum())])
            plain = model(x[None], t[i:i + 1], **kw1)[0]
            assert torch.allclose(outs[i], plain, atol=1e-5), (i, float((outs[i] - plain).abs().max()))


@pytest.mark.parametrize("frame_cond", FRAME_CONDITIONING)
def test_zero_init_outputs_zero(frame_cond):
    model = small("factorized", frame_cond, "cross_attn")
    x = torch.randn(2, 3, 4, 4, 4)
    frames = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]]).bool()
    kw = {} if frame_cond == "none" else {"cond": x, "cond_frames": frames}
    out = model(x, torch.tensor([5.0, 500.0]), text=torch.randn(2, 3, 8), **kw)
    assert out.shape == x.shape and torch.count_nonzero(out) == 0


def test_factorized_attention_reaches_only_its_groups():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 3, 4, 4)
    bumped = x.clone()
    bumped[:, :, 0] += 1.0  # change frame 0 only
    t = torch.tensor([300.0])
    spatial_only = randomized(small("factorized", depth=1))  # a single spatial block
    a, b = spatial_only(x, t), spatial_only(bumped, t)
    assert torch.equal(a[:, :, 1:], b[:, :, 1:]) and not torch.equal(a[:, :, 0], b[:, :, 0])
    full = randomized(small("full", depth=1))
    assert not torch.allclose(full(x, t)[:, :, 1:], full(bumped, t)[:, :, 1:])
    both = randomized(small("factorized", depth=2))  # spatial then temporal: reaches every frame
    assert not torch.allclose(both(x, t)[:, :, 1:], both(bumped, t)[:, :, 1:])


def test_token_groups_equal_the_masked_reference():
    torch.manual_seed(0)
    lat = [torch.randn(3, 3, 4, 4), torch.randn(3, 2, 2, 6)]
    packed = pack_latents(lat, (1, 2, 2), max_len=20)
    seg = packed.segment_ids
    attn = Attention(16, num_heads=2, qkv_bias=True).eval()
    x = torch.randn(*seg.shape, 16)
    for key in factorized_keys(packed.coords, seg):
        same = (key[:, :, None] == key[:, None, :]) | ((key < 0)[:, :, None] & (key < 0)[:, None, :])
        ref = MaskedAttention(same.unsqueeze(1))(attn, x)
        got = TokenGroups(key)(attn, x)
        valid = seg >= 0
        assert torch.allclose(got[valid], ref[valid], atol=1e-5)


@pytest.mark.parametrize("frame_cond", FRAME_CONDITIONING[1:])
def test_noisy_values_at_condition_frames_are_never_read(frame_cond):
    torch.manual_seed(0)
    model = randomized(small("full", frame_cond))
    x, cond = torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 4, 4, 4)
    frames = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]).bool()
    other = torch.where(frames[:, None, :, None, None], torch.randn_like(x), x)
    t = torch.tensor([200.0, 800.0])
    a = model(x, t, cond=cond, cond_frames=frames)
    b = model(other, t, cond=cond, cond_frames=frames)
    assert torch.allclose(a, b, atol=1e-6)
    c = model(x, t, cond=cond + torch.randn_like(cond), cond_frames=frames)  # but the clean frames are
    assert not torch.allclose(a, c, atol=1e-4)


def test_in_place_is_token_concat_with_timestep_zero_on_clean_frames():
    torch.manual_seed(0)
    concat = randomized(small("full", "token_concat"))
    in_place = small("full", "in_place")
    in_place.load_state_dict(concat.state_dict())  # the two ways have the same parameters
    x, cond = torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 4, 4, 4)
    frames = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]).bool()
    t = torch.tensor([200.0, 800.0])
    per_frame = torch.where(frames, 0.0, t[:, None])  # [B, T]
    a = in_place(x, t, cond=cond, cond_frames=frames)
    assert torch.allclose(a, concat(x, per_frame, cond=cond, cond_frames=frames), atol=1e-6)
    assert not torch.allclose(a, concat(x, t, cond=cond, cond_frames=frames), atol=1e-4)


def test_channel_concat_projection_starts_at_zero():
    torch.manual_seed(0)
    model = randomized(small("full", "channel_concat"))
    torch.nn.init.zeros_(model.frame_conditioner.cond_in.weight)
    torch.nn.init.zeros_(model.frame_conditioner.cond_in.bias)
    x, frames = torch.randn(1, 3, 4, 4, 4), torch.tensor([[1, 0, 0, 0]]).bool()
    a = model(x, torch.tensor([10.0]), cond=torch.randn_like(x), cond_frames=frames)
    b = model(x, torch.tensor([10.0]), cond=torch.randn_like(x), cond_frames=frames)
    assert torch.equal(a, b)  # a fresh channel-concat model ignores the reference: it starts unconditional
    assert small("full", "channel_concat").frame_conditioner.cond_in.weight.abs().sum() == 0


def test_block_names_follow_dit():
    with torch.device("meta"):
        video = video_dit("VideoDiT-S/2", in_channels=4)
        image = dit("DiT-S/2")
    vb = {k: v.shape for k, v in video.state_dict().items() if k.startswith("blocks.")}
    ib = {k: v.shape for k, v in image.state_dict().items() if k.startswith("blocks.")}
    assert vb == ib
    assert video.kinds == ["full"] * 12
    assert video_dit("VideoDiT-S/2", attention="factorized").kinds[:4] == ["spatial", "temporal"] * 2


def test_build_from_scale_config():
    cfg = get_config("tiny")
    model = build_video_dit(cfg, frame_cond="adaln", text_cond="none")
    assert model.hidden_size == cfg.model.hidden_size and len(model.blocks) == cfg.model.depth
    assert model.patch_size == tuple(cfg.patches.patch_size)


def test_bad_input_says_what_is_allowed():
    model = small("full", "in_place", "cross_attn")
    x, t = torch.randn(1, 3, 4, 4, 4), torch.tensor([1.0])
    with pytest.raises(ValueError, match=r"\[B, 3, T, H, W\].*patch_size=\(1, 2, 2\)"):
        model(torch.randn(1, 4, 4, 4, 4), t, text=torch.randn(1, 2, 8))
    with pytest.raises(ValueError, match="width 5 is not a multiple of the patch 2"):
        model(torch.randn(1, 3, 4, 4, 5), t, text=torch.randn(1, 2, 8))
    with pytest.raises(ValueError, match="text_dim"):
        model(x, t, text=torch.randn(1, 2, 7))
    with pytest.raises(ValueError, match="pass text"):
        model(x, t)
    with pytest.raises(ValueError, match=r"cond_frames must be \[B, T\]"):
        model(x, t, cond=x, cond_frames=torch.ones(1, 3, dtype=torch.bool), text=torch.randn(1, 2, 8))
    with pytest.raises(ValueError, match="frame_cond='none'.*adaln"):
        small()(x, t, cond=x, cond_frames=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="allowed: full, factorized"):
        small("spacetime")
    with pytest.raises(ValueError, match="allowed: none, adaln, cross_attn, token_concat, in_place, channel_concat"):
        small("full", "film")
    with pytest.raises(ValueError, match="needs attention='full'"):
        small("factorized", "none", "joint")


def test_caption_whitening_keeps_the_function_and_is_saved(tmp_path):
    """set_whitening re-expresses the embedders' inputs (same outputs), whitened tokens have unit
    covariance, and the buffers survive save/load; a model without them loads as before."""
    from sora_mini.text.embedding import whitening

    torch.manual_seed(0)
    model = randomized(small(text_cond="cross_attn")).eval()
    mix = torch.randn(8, 8)  # correlated, unequal directions: what whitening undoes
    corpus = torch.randn(64, 10, 8) @ mix + 3.0
    mask = torch.rand(64, 10) > 0.2
    mean, matrix = whitening(corpus, mask)
    white = (corpus[mask] - mean) @ matrix
    assert torch.allclose(torch.cov(white.T), torch.eye(8), atol=1e-3)
    x, t = torch.randn(2, 3, 3, 4, 4), torch.tensor([300.0, 700.0])
    text, text_mask = corpus[:2], mask[:2]
    with torch.no_grad():
        before = model(x, t, text=text, text_mask=text_mask)
        model.text_conditioner.set_whitening(mean, matrix)
        after = model(x, t, text=text, text_mask=text_mask)
    assert model.text_conditioner.whitened
    assert torch.allclose(before, after, atol=1e-4) and before.abs().mean() > 1e-3
    with pytest.raises(ValueError, match="whitened already"):
        model.text_conditioner.set_whitening(mean, matrix)
    model.save_pretrained(tmp_path / "white")
    loaded = VideoDiT.from_pretrained(tmp_path / "white")
    assert loaded.text_conditioner.whitened and torch.equal(loaded.text_conditioner.text_whitening, matrix)
    with torch.no_grad():
        assert torch.allclose(loaded(x, t, text=text, text_mask=text_mask), after, atol=1e-6)
    plain = small(text_cond="cross_attn")
    plain.save_pretrained(tmp_path / "plain")
    assert not VideoDiT.from_pretrained(tmp_path / "plain").text_conditioner.whitened
    with pytest.raises(ValueError, match="at least 2"):
        whitening(corpus[:1, :1], torch.ones(1, 1, dtype=torch.bool))


def test_cpu_bf16_attention_masks_as_the_reference_forward_and_backward():
    """The bf16 CPU path adds the mask as a 0 / -inf bias: outputs and gradients as a masked softmax."""
    from sora_mini.models.layers import dot_product_attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 8) for _ in range(3))
    mask = torch.rand(2, 1, 6, 6) < 0.6
    mask[..., 0] = True  # every query sees a key
    grad = torch.randn(2, 2, 6, 8)

    def run(fn, dtype):
        leaves = [x.detach().to(dtype).clone().requires_grad_() for x in (q, k, v)]
        out = fn(*leaves)
        out.backward(grad.to(dtype))
        return [out.float(), *(x.grad.float() for x in leaves)]

    def reference(q, k, v):
        scores = (q @ k.transpose(-2, -1)) / q.shape[-1] ** 0.5
        return scores.masked_fill(~mask, float("-inf")).softmax(-1) @ v

    want = run(reference, torch.float32)
    bias = torch.zeros(mask.shape, dtype=torch.bfloat16).masked_fill(~mask, float("-inf"))
    for m in (mask, bias):
        got = run(lambda q, k, v, m=m: dot_product_attention(q, k, v, m), torch.bfloat16)
        for a, b in zip(got, want):
            assert torch.allclose(a, b, atol=0.06, rtol=0.05), float((a - b).abs().max())
    unmasked = run(lambda q, k, v: dot_product_attention(q, k, v, None), torch.bfloat16)
    assert not torch.allclose(unmasked[0], want[0], atol=0.06)  # the mask matters at this tolerance


def test_caption_rows_drop_padding_and_keep_token_order():
    from sora_mini.models.conditioning import TextConditioner

    tokens = torch.arange(4 * 3, dtype=torch.float32).view(4, 3, 1)  # example e, token j -> 3 e + j
    tmask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]]).bool()
    rows = torch.tensor([[0, 1, -1], [2, 3, -1]])  # row 1: examples 2 and 3; -1 = no example
    ctx, owner, valid = TextConditioner.rows(tokens, tmask, rows)
    assert ctx.shape == (2, 4, 1)  # the fullest row (examples 2 and 3) has 3 + 1 real tokens
    assert ctx[0, :3, 0].tolist() == [0, 1, 3] and owner[0, :3].tolist() == [0, 0, 1]
    assert valid[0].tolist() == [True, True, True, False]
    assert ctx[1, :, 0].tolist() == [6, 7, 8, 9] and owner[1].tolist() == [2, 2, 2, 3] and bool(valid[1].all())
