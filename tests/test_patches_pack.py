"""Patch n' Pack: packing invariants, unpacking, the block-diagonal mask, and a transformer block that
gives each packed example exactly what it gives that example alone."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from timm.layers import Attention, Mlp

from sora_mini.patches import (
    first_fit,
    pack,
    pack_latents,
    pad_to_max,
    segment_attention_mask,
    sincos_3d,
)
from sora_mini.patches.layouts import (
    fill_sequences,
    layout_buckets,
    layout_packed,
    layout_pad_to_max,
)


def _examples(lengths, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = [torch.randn(n, dim, generator=g) for n in lengths]
    coords = [torch.randint(0, 9, (n, 3), generator=g) for n in lengths]
    return tokens, coords


# ----------------------------------------------------------------------------------------------
# packing
# ----------------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=25), max_len=st.integers(40, 90),
       sort=st.booleans())
def test_pack_unpack_round_trip_and_invariants(lengths, max_len, sort):
    tokens, coords = _examples(lengths)
    pb = pack(tokens, coords, max_len, sort=sort)
    assert pb.tokens.shape == (pb.num_sequences, max_len, 4)
    for x, y in zip(tokens, pb.unpack(pb.tokens)):
        assert torch.equal(x, y)
    for c, y in zip(coords, pb.unpack(pb.coords)):
        assert torch.equal(c, y)
    # segment ids, padding and locations say the same thing
    for i, (s, a, n) in enumerate(pb.locations):
        assert torch.all(pb.segment_ids[s, a:a + n] == i)
    assert torch.equal(pb.padding, pb.segment_ids < 0)
    assert int((~pb.padding).sum()) == sum(lengths)
    assert torch.all(pb.tokens[pb.padding] == 0)
    # first-fit never leaves two sequences both at most half full
    fill = (~pb.padding).sum(1)
    assert int((fill <= max_len / 2).sum()) <= 1


def test_first_fit_places_each_example_in_the_first_sequence_with_room():
    assert first_fit([6, 6, 3, 4, 1], 10) == [[0, 2, 4], [1, 3]]
    assert first_fit([3, 6, 6, 4], 10, sort=True) == [[1, 3], [2, 0]]


def test_bad_batches_name_sizes_and_limits():
    tokens, coords = _examples([5, 30, 7])
    with pytest.raises(ValueError, match="example 1 has 30 tokens, more than the pack length 16"):
        pack(tokens, coords, 16)
    with pytest.raises(ValueError, match="empty batch"):
        pack([], [], 16)
    with pytest.raises(ValueError, match="empty batch"):
        pack_latents([], (1, 2, 2), 16)
    with pytest.raises(ValueError, match="expected \\[5, 3\\]"):
        pack(tokens, [c[:, :2] for c in coords], 64)
    with pytest.raises(ValueError, match="width 3 is not a multiple of the patch 2"):
        pack_latents([torch.randn(4, 1, 4, 3)], (1, 2, 2), 16)


def test_broadcast_gives_each_token_its_examples_row():
    tokens, coords = _examples([3, 5, 2])
    pb = pack(tokens, coords, 6)
    values = torch.tensor([[10.0], [20.0], [30.0]])
    out = pb.broadcast(values)  # [S, L, 1]
    for i, y in enumerate(pb.unpack(out)):
        assert torch.all(y == values[i])
    assert torch.all(out[pb.padding] == 0)


def test_layouts_count_real_tokens():
    lengths = [16, 48, 96, 32, 72, 16]
    tokens, coords = _examples(lengths)
    assert layout_packed(lengths, 128).real_share == pytest.approx(pack(tokens, coords, 128).real_share())
    assert layout_pad_to_max(lengths).slots == 6 * 96 == pad_to_max(tokens, coords).padding.numel()
    assert layout_pad_to_max(lengths, batch_size=3).slots == 3 * 96 + 3 * 72
    # two buckets of 16 tokens (4 rows each at 64 tokens per batch) and one of each other size
    b = layout_buckets(list(lengths), lengths, tokens_per_batch=64)
    assert b.slots == 64 + 48 + 96 + 64 + 72 and b.real == sum(lengths)
    # attention pairs: a dense mask computes len(row)^2 per row; only sum n_i^2 are within one example
    squares = sum(n * n for n in lengths)
    assert layout_packed(lengths, 128).pairs == 3 * 128 ** 2 and layout_packed(lengths, 128).real_pairs == squares
    assert layout_pad_to_max(lengths).real_pair_share == pytest.approx(squares / (6 * 96 ** 2))
    assert b.pairs == 64 * 16 + 48 ** 2 + 96 ** 2 + 32 ** 2 * 2 + 72 ** 2 and b.real_pairs == squares
    bins, used = fill_sequences(iter([30, 30, 30, 50, 10, 60]), 2, 64, patience=2)
    assert bins == [[0, 1], [2, 4]] and used == 6


# ----------------------------------------------------------------------------------------------
# attention that keeps every example to itself
# ----------------------------------------------------------------------------------------------
def test_segment_mask_is_block_diagonal_and_never_fully_masked():
    seg = torch.tensor([[0, 0, 2, 2, 2, -1], [1, 1, 1, 1, -1, -1]])
    mask = segment_attention_mask(seg, seg < 0)[:, 0]
    assert mask.shape == (2, 6, 6) and mask.any(-1).all()
    assert mask[0, 0, 1] and not mask[0, 1, 2] and not mask[0, 2, 5] and not mask[1, 3, 4]


@pytest.mark.parametrize("plan", ["full_attention", "mask", "groups"])
def test_packed_attention_equals_attention_per_example(plan):
    """The backbones' packed attention (examples batched by length), the block-diagonal mask and the
    padded per-example groups it was measured against give every example what attention over that
    example alone gives it."""
    from sora_mini.models.attention import (
        LengthGroups,
        MaskedAttention,
        TokenGroups,
        full_attention,
    )
    from sora_mini.models.layers import Attention as BackboneAttention

    torch.manual_seed(0)
    lengths = [7, 12, 3, 9, 7]
    pb = pack(*_examples(lengths, dim=1), max_len=20)
    attn = BackboneAttention(16, num_heads=2, qkv_bias=True)
    x = torch.randn(pb.num_sequences, 20, 16)
    attend = {"full_attention": lambda: full_attention(pb.segment_ids), "groups": lambda: TokenGroups(pb.segment_ids),
              "mask": lambda: MaskedAttention(segment_attention_mask(pb.segment_ids))}[plan]()
    if plan == "full_attention":
        assert isinstance(attend, LengthGroups) and len(attend.groups) == 4  # lengths 3, 7 (twice), 9, 12
    out = attend(attn, x)
    for s, a, n in pb.locations:
        alone = attn(x[s:s + 1, a:a + n])  # no mask: the example is all there is
        torch.testing.assert_close(out[s:s + 1, a:a + n], alone, atol=1e-6, rtol=1e-5)


def test_length_groups_match_the_mask_forward_and_backward():
    """Examples scattered in their rows (ids out of order, padding between): the same outputs at real
    tokens and the same input gradients as the block-diagonal mask; padding slots get 0."""
    from sora_mini.models.attention import LengthGroups, MaskedAttention
    from sora_mini.models.layers import Attention as BackboneAttention

    torch.manual_seed(0)
    seg = torch.tensor([[2, 2, 0, 0, 0, 2, -1, 1, 1, -1], [0, 0, 0, 0, 0, 0, 0, 1, 1, 1], [-1] * 10])
    attn = BackboneAttention(16, num_heads=2, qkv_bias=True)
    x = torch.randn(3, 10, 16, requires_grad=True)
    real = seg >= 0
    ref = MaskedAttention(segment_attention_mask(seg))(attn, x)
    got = LengthGroups(seg)(attn, x)
    torch.testing.assert_close(got[real], ref[real], atol=1e-6, rtol=1e-5)
    assert bool((got[~real] == 0).all())
    g_ref, = torch.autograd.grad(ref[real].square().sum(), x)
    g_got, = torch.autograd.grad(got[real].square().sum(), x)
    torch.testing.assert_close(g_got, g_ref, atol=1e-5, rtol=1e-4)


class Block(torch.nn.Module):
    """A pre-norm transformer block of timm's Attention and Mlp, as in ViT / DiT."""

    def __init__(self, dim=32, heads=4):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=heads, qkv_bias=True)
        self.mlp = Mlp(dim, hidden_features=4 * dim)

    def forward(self, x, attn_mask=None):
        x = x + self.attn(self.norm1(x), attn_mask=attn_mask)
        return x + self.mlp(self.norm2(x))


def _packed_inputs():
    torch.manual_seed(0)
    zs = [torch.randn(4, t, h, w) for t, h, w in [(2, 4, 6), (1, 4, 4), (3, 2, 4), (1, 6, 2), (2, 2, 2)]]
    pb = pack_latents(zs, (1, 2, 2), max_len=24)
    embed = torch.nn.Linear(16, 32)
    x = embed(pb.tokens) + sincos_3d(pb.coords, 32)  # [S, L, 32]
    return pb, x.detach()


def test_block_on_a_packed_batch_equals_each_example_alone():
    pb, x = _packed_inputs()
    assert pb.num_sequences < pb.num_examples  # several examples really share a sequence
    blocks = torch.nn.Sequential(Block(), Block()).eval()
    mask = pb.attention_mask()
    with torch.no_grad():
        y = x
        for blk in blocks:
            y = blk(y, attn_mask=mask)
        for i, (out, inp) in enumerate(zip(pb.unpack(y), pb.unpack(x))):
            alone = inp[None]
            for blk in blocks:
                alone = blk(alone)
            assert (out - alone[0]).abs().max() <= 1e-5, f"example {i} differs"
        # and without the mask the examples do leak into each other
        leaky = blocks[0](x)
        assert max((a - b).abs().max() for a, b in zip(pb.unpack(leaky), pb.unpack(blocks[0](x, mask)))) > 1e-3


def test_no_gradient_flows_between_examples_in_a_pack():
    pb, x = _packed_inputs()
    x.requires_grad_(True)
    block = Block()
    y = block(x, attn_mask=pb.attention_mask())
    target = next(i for i, (s, _, _) in enumerate(pb.locations)
                  if sum(1 for s2, _, _ in pb.locations if s2 == s) > 1)
    pb.unpack(y)[target].square().sum().backward()
    grads = pb.unpack(x.grad)
    assert grads[target].abs().sum() > 0
    same_seq = [i for i, (s, _, _) in enumerate(pb.locations) if s == pb.locations[target][0] and i != target]
    assert same_seq
    for i in range(pb.num_examples):
        if i != target:
            assert torch.all(grads[i] == 0), f"example {i} got a gradient from example {target}"
    assert torch.all(x.grad[pb.padding] == 0)


def test_bucketing_with_rows_per_batch():
    lengths = [16, 16, 16, 48]
    b = layout_buckets(lengths, lengths, batch_size=2)
    assert b.slots == 2 * 2 * 16 + 2 * 48 and b.rows == 6
    with pytest.raises(ValueError, match="exactly one"):
        layout_buckets(lengths, lengths)


def test_bucket_batches_hold_one_size_each():
    from sora_mini.patches.layouts import bucket_batches

    keys = ["a", "b", "a", "a", "b", "c"]
    lengths = [8, 16, 8, 8, 16, 4]
    batches = bucket_batches(keys, lengths, batch_size=2)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len({keys[i] for i in b}) == 1 and len(b) <= 2 for b in batches)
    assert bucket_batches(keys, lengths, tokens_per_batch=16) == [[0, 2], [3], [1], [4], [5]]
