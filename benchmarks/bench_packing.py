"""Patch n' Pack vs pad-to-max vs bucketing on the world's mix of sizes and durations.

Figures: (1) share of real tokens in the computed slots for each layout; (2) forward+backward
throughput (real tokens / s) of a DiT-S-wide stack of transformer blocks on the same examples,
packed vs padded to the longest, measured side by side in one run; (3) the attention paths
for a packed batch (SDPA + block-diagonal mask, one SDPA per example, nested jagged tensors);
(4) three exact packed full-attention plans through the backbones' ``Attention``, fp32 and bf16
autocast (emulated where the CPU has no native bf16): the block-diagonal mask (``MaskedAttention``),
per-example groups padded to the longest (``TokenGroups`` keyed by segment id) and examples batched
by length (``LengthGroups``, what ``models.attention.full_attention`` uses); they decided it.
Times are the best of n interleaved runs (the least noisy figure on a shared machine).
Run: ``.venv/bin/python benchmarks/bench_packing.py`` (scale "small"), ``main(quick=True)`` for tiny;
``--plans``: only (4), on the tiny and small mixes.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch
import torch.nn.functional as F
from timm.layers import Attention, Mlp

from sora_mini.config import get_config
from sora_mini.patches import pack, pad_to_max
from sora_mini.patches.layouts import (
    fill_sequences,
    layout_buckets,
    layout_packed,
    layout_pad_to_max,
)
from sora_mini.patches.patchify import latent_grid
from sora_mini.train.device import autocast_for, resolve_precision
from sora_mini.world.datasets import WorldDataset

DEVICE = "cpu"  # what this benchmark measures


def world_grids(scale: str, n: int, seed: int = 0) -> list[tuple[int, int, int]]:
    """Token grids (nt, nh, nw) of ``n`` examples drawn from the world's training mix of a scale."""
    cfg = get_config(scale)
    ds = WorldDataset(n, seed=seed, sizes=cfg.world.sizes, frames=cfg.world.frames, captions=False)
    c = cfg.compression
    return [latent_grid((h, w), t, c.spatial_factor, c.temporal_factor, cfg.patches.patch_size)
            for t, h, w in (ds.size_of(i) for i in range(n))]


class Block(torch.nn.Module):
    """Pre-norm transformer block (timm Attention + Mlp), the compute of one DiT block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(dim), torch.nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads=heads, qkv_bias=True)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio))

    def forward(self, x, mask):
        """mask: a boolean [S, 1, L, L] mask, or the pack's locations for per-example attention."""
        h = self.norm1(x)
        h = self._per_example(h, mask) if isinstance(mask, list) else self.attn(h, attn_mask=mask)
        x = x + h
        return x + self.mlp(self.norm2(x))

    def _per_example(self, h, locations):
        """The same attention (timm's weights), one SDPA call per packed example: cost sum n_i^2."""
        a = self.attn
        S, L, D = h.shape
        q, k, v = a.qkv(h).reshape(S, L, 3, a.num_heads, a.head_dim).permute(2, 0, 3, 1, 4)
        out = q.new_zeros(q.shape)  # [S, H, L, Dh]; padding slots stay 0
        for s, start, n in locations:
            sl = slice(start, start + n)
            out[s, :, sl] = F.scaled_dot_product_attention(q[s, :, sl], k[s, :, sl], v[s, :, sl])
        return a.proj(out.transpose(1, 2).reshape(S, L, D))


def _time_step(blocks, x, mask, bf16: bool) -> float:
    start = time.perf_counter()
    with autocast_for(DEVICE, "bf16" if bf16 else "fp32"):
        y = x
        for blk in blocks:
            y = blk(y, mask)
    y.float().square().mean().backward()
    return time.perf_counter() - start


def block_flops(rows: int, length: int, dim: int, mlp_ratio: float) -> float:
    """Forward FLOPs of one transformer block on [rows, length, dim]: the linear layers
    (qkv, proj, MLP) plus dense attention (QK^T and AV over every slot, masked or not)."""
    linear = 2 * (4 + 2 * mlp_ratio) * dim * dim
    return rows * length * (linear + 4 * length * dim)


def throughput(scale: str, num_sequences: int, repeats: int, width_scale: str | None = None,
               depth: int | None = None, bf16: bool = True, seed: int = 0) -> dict:
    """Forward+backward of a block stack on one packed batch vs the same examples padded to the longest.

    The examples come from ``scale``'s world mix and pack length; the blocks' width and heads from
    ``width_scale``'s model (``"base"`` is DiT-S: 384 wide, 6 heads), ``depth`` blocks.
    """
    cfg = get_config(scale)
    m, L = get_config(width_scale or scale).model, cfg.patches.pack_length
    depth = depth or m.depth
    grids = world_grids(scale, 4096, seed=seed)
    lengths = [a * b * c for a, b, c in grids]
    bins, _ = fill_sequences(iter(lengths), num_sequences, L)  # a loader that fills S rows of L
    chosen = [i for b in bins for i in b]
    g = torch.Generator().manual_seed(seed)
    tokens = [torch.randn(lengths[i], m.hidden_size, generator=g) for i in chosen]
    coords = [torch.zeros(lengths[i], 3, dtype=torch.long) for i in chosen]
    packed, padded = pack(tokens, coords, L), pad_to_max(tokens, coords)
    torch.manual_seed(seed)
    blocks = torch.nn.ModuleList(Block(m.hidden_size, m.num_heads, m.mlp_ratio) for _ in range(depth))
    runs = {"packed": packed, "packed_per_example": packed, "pad-to-max": padded}
    inputs = {k: (pb.tokens.clone().requires_grad_(True),
                  pb.locations if k == "packed_per_example" else pb.attention_mask()) for k, pb in runs.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for k in runs:  # warm-up
        _time_step(blocks, *inputs[k], bf16)
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        for k in runs:
            blocks.zero_grad(set_to_none=True)
            times[k].append(_time_step(blocks, *inputs[k], bf16))
    real = sum(len(t) for t in tokens)
    # bf16=True is training's precision: bf16 autocast where the CPU has native bf16, else fp32
    ran_bf16 = resolve_precision(DEVICE, "bf16" if bf16 else "fp32") == "bf16"
    out = {"examples": len(chosen), "real_tokens": real, "bf16": ran_bf16,
           "model": f"D={m.hidden_size} heads={m.num_heads} depth={depth}"}
    for k, pb in runs.items():  # best of n: on a shared machine the minimum is the least noisy
        sec = min(times[k])
        out[k] = {"shape": list(pb.tokens.shape), "real_share": pb.real_share(), "seconds": sec,
                  "seconds_median": statistics.median(times[k]), "real_tokens_per_s": real / sec,
                  "gflops_per_step": 3 * depth * block_flops(*pb.tokens.shape[:2], m.hidden_size,
                                                             m.mlp_ratio) / 1e9}
    out["packed_per_example"]["gflops_per_step"] = 3 * depth * sum(  # attention over each example only
        block_flops(1, n, m.hidden_size, m.mlp_ratio) for n in packed.lengths) / 1e9
    out["speedup"] = out["pad-to-max"]["seconds"] / out["packed"]["seconds"]
    out["speedup_median"] = out["pad-to-max"]["seconds_median"] / out["packed"]["seconds_median"]
    out["flops_ratio"] = out["pad-to-max"]["gflops_per_step"] / out["packed"]["gflops_per_step"]
    out["speedup_per_example"] = out["pad-to-max"]["seconds"] / out["packed_per_example"]["seconds"]
    return out


def efficiency(scale: str, n: int, seed: int = 0) -> dict:
    """Share of real tokens for each layout of ``n`` examples from the world's mix."""
    cfg = get_config(scale)
    L, bs = cfg.patches.pack_length, cfg.train.batch_size
    grids = world_grids(scale, n, seed=seed)
    lengths = [a * b * c for a, b, c in grids]
    layouts = [
        layout_packed(lengths, L), layout_packed(lengths, L, sort=True),
        layout_pad_to_max(lengths), layout_pad_to_max(lengths, batch_size=bs),
        layout_buckets(grids, lengths, tokens_per_batch=4 * L), layout_buckets(grids, lengths, batch_size=bs),
    ]
    names = ["packing", "packing_ffd", "pad_to_max_all", f"pad_to_max_batch{bs}", f"bucketing_{4 * L}tokens",
             f"bucketing_batch{bs}"]
    out = {name: {"real_share": lay.real_share, "rows": lay.rows, "slots": lay.slots}
           for name, lay in zip(names, layouts)}
    bins, _ = fill_sequences(iter(lengths), 8, L)
    filled = sum(lengths[i] for b in bins for i in b)
    out["packing_stream_8x"] = {"real_share": filled / (8 * L), "rows": 8, "slots": 8 * L}
    out.update(examples=n, pack_length=L, tokens_min=min(lengths), tokens_max=max(lengths),
               tokens_mean=sum(lengths) / n, buckets=len(set(grids)))
    return out


def attention_paths(scale: str, num_sequences: int, repeats: int, seed: int = 0) -> dict:
    """Forward+backward time of attention on one packed batch by three exact paths."""
    cfg = get_config(scale)
    L, heads = cfg.patches.pack_length, cfg.model.num_heads
    dh = cfg.model.hidden_size // heads
    lengths = [a * b * c for a, b, c in world_grids(scale, 1024, seed=seed)]
    bins, _ = fill_sequences(iter(lengths), num_sequences, L)
    ex = [lengths[i] for b in bins for i in b]
    pb = pack([torch.zeros(n, 1) for n in ex], [torch.zeros(n, 3, dtype=torch.long) for n in ex], L)
    S, idx, mask = pb.num_sequences, pb.flat_index(), pb.attention_mask()
    offsets = torch.tensor([0, *torch.tensor(pb.lengths).cumsum(0).tolist()])
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(S, heads, L, dh, generator=g).requires_grad_(True) for _ in range(3))

    def sdpa_mask():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def per_example():
        out = q.new_zeros(S, heads, L, dh)
        for s, a, n in pb.locations:
            sl = slice(a, a + n)
            out[s, :, sl] = F.scaled_dot_product_attention(q[s, :, sl], k[s, :, sl], v[s, :, sl])
        return out

    def jagged():
        def nest(x):  # [S, H, L, dh] -> NJT [B, H, j, dh]
            flat = x.transpose(1, 2).reshape(S * L, heads, dh)[idx]  # [sum n, H, dh]
            return torch.nested.nested_tensor_from_jagged(flat, offsets=offsets).transpose(1, 2)

        o = F.scaled_dot_product_attention(nest(q), nest(k), nest(v)).transpose(1, 2).values()
        out = q.new_zeros(S * L, heads, dh).index_copy(0, idx, o)
        return out.reshape(S, L, heads, dh).transpose(1, 2)

    ref = sdpa_mask().detach()
    valid = (~pb.padding)[:, None, :, None].expand_as(ref)
    out = {"shape": [S, heads, L, dh], "examples": len(ex)}
    for name, fn in [("sdpa_mask", sdpa_mask), ("per_example", per_example), ("jagged", jagged)]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nested tensors warn that they are a prototype
                diff = (fn().detach() - ref)[valid].abs().max().item()
                fn().sum().backward()  # warm-up
                ts = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    fn().sum().backward()
                    ts.append(time.perf_counter() - start)
            out[name] = {"ms": 1000 * min(ts), "max_abs_diff": diff}
        except (RuntimeError, NotImplementedError) as e:  # a path this torch build lacks
            out[name] = {"error": str(e)[:200]}
    return out


def packed_plans(scale: str, num_sequences: int, repeats: int, width_scale: str | None = None,
                 seed: int = 0) -> dict:
    """Forward+backward ms of one attention layer on a packed batch by the package's three plans.

    The examples and pack length come from ``scale``'s world mix, width and heads from
    ``width_scale``'s model; fp32 and bf16 autocast (training's precision on a CPU).
    """
    from sora_mini.models.attention import LengthGroups, MaskedAttention, TokenGroups
    from sora_mini.models.layers import Attention as OurAttention
    from sora_mini.patches import segment_attention_mask

    cfg, m = get_config(scale), get_config(width_scale or scale).model
    L = cfg.patches.pack_length
    lengths = [a * b * c for a, b, c in world_grids(scale, 1024, seed=seed)]
    bins, _ = fill_sequences(iter(lengths), num_sequences, L)
    ex = [lengths[i] for b in bins for i in b]
    pb = pack([torch.zeros(n, 1) for n in ex], [torch.zeros(n, 3, dtype=torch.long) for n in ex], L)
    seg = pb.segment_ids
    torch.manual_seed(seed)
    attn = OurAttention(m.hidden_size, num_heads=m.num_heads, qkv_bias=True)
    x = torch.randn(pb.num_sequences, L, m.hidden_size, requires_grad=True)
    valid = (~pb.padding)[..., None]
    out = {"shape": [pb.num_sequences, L, m.hidden_size], "heads": m.num_heads, "examples": len(ex),
           "longest": max(ex)}
    for bf16 in (False, True):
        ref = None
        for impl in ("mask", "groups", "lengths"):
            def step(impl=impl, bf16=bf16):
                # built per call, as in a forward pass
                plan = {"mask": lambda: MaskedAttention(segment_attention_mask(seg)),
                        "groups": lambda: TokenGroups(seg), "lengths": lambda: LengthGroups(seg)}[impl]()
                with autocast_for(DEVICE, "bf16-always" if bf16 else "fp32"):
                    y = plan(attn, x)
                (y.float() * valid).square().sum().backward()
                return y.detach().float()

            y = step()  # warm-up
            ref = y if ref is None else ref
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t0)
            out[f"{impl}_{'bf16' if bf16 else 'fp32'}"] = {
                "ms": 1000 * min(ts), "max_abs_diff": ((y - ref) * valid).abs().max().item()}
    return out


def print_plans(r: dict, scale: str) -> None:
    print(f"== packed full-attention plans, scale {scale!r}: [S, L, D] = {r['shape']}, {r['heads']} heads, "
          f"{r['examples']} examples (longest {r['longest']}), fwd+bwd of one layer")
    for prec in ("fp32", "bf16"):
        m, g, n = r[f"mask_{prec}"], r[f"groups_{prec}"], r[f"lengths_{prec}"]
        print(f"  {prec}: mask {m['ms']:7.1f} ms | groups {g['ms']:7.1f} ms ({g['ms'] / m['ms']:.2f}x the mask, "
              f"max|diff| {g['max_abs_diff']:.1e}) | lengths {n['ms']:7.1f} ms ({n['ms'] / m['ms']:.2f}x the mask, "
              f"max|diff| {n['max_abs_diff']:.1e})")


def main(quick: bool = False) -> dict:
    scale = "tiny" if quick else "small"
    torch.set_num_threads(max(1, torch.get_num_threads()))
    eff = efficiency(scale, 256)
    # quick: tiny mix and tiny model; full: the small mix through DiT-S-wide blocks (384, 6 heads)
    thr = throughput(scale, num_sequences=4, repeats=3 if quick else 4,
                     width_scale=None if quick else "base", depth=None if quick else 4)
    att = attention_paths(scale, num_sequences=4, repeats=3 if quick else 7)
    print(f"== Patch n' Pack on the world's mix, scale {scale!r}: {eff['examples']} examples, "
          f"{eff['tokens_min']}-{eff['tokens_max']} tokens (mean {eff['tokens_mean']:.1f}), "
          f"{eff['buckets']} size buckets, pack length {eff['pack_length']}")
    for name in ["packing", "packing_ffd", "packing_stream_8x"] + [k for k in eff if k.startswith("bucketing")] \
            + [k for k in eff if k.startswith("pad_to_max")]:
        print(f"  {name:22s} real tokens {100 * eff[name]['real_share']:5.1f}%  ({eff[name]['slots']} slots)")
    print(f"== forward+backward, {thr['model']}, bf16={thr['bf16']}, {thr['examples']} examples, "
          f"{thr['real_tokens']} real tokens")
    for k in ("packed", "packed_per_example", "pad-to-max"):
        r = thr[k]
        print(f"  {k:18s} {r['shape']!s:16s} real {100 * r['real_share']:5.1f}%  "
              f"{r['gflops_per_step']:6.1f} GFLOP  {r['seconds'] * 1000:8.1f} ms  "
              f"{r['real_tokens_per_s']:9.0f} real tokens/s")
    print(f"  packed / pad-to-max throughput: {thr['speedup']:.2f}x best of n "
          f"({thr['speedup_median']:.2f}x on medians; {thr['flops_ratio']:.2f}x fewer FLOPs); "
          f"with per-example attention {thr['speedup_per_example']:.2f}x")
    print(f"== attention paths on one packed batch {att['shape']} ({att['examples']} examples), fwd+bwd")
    for name in ("sdpa_mask", "per_example", "jagged"):
        r = att[name]
        print(f"  {name:12s} " + (f"{r['ms']:8.1f} ms  max|diff| {r['max_abs_diff']:.1e}"
                                  f"  ({r['ms'] / att['sdpa_mask']['ms']:.2f}x the mask)"
                                  if "ms" in r else r["error"]))
    return {"scale": scale, "efficiency": eff, "throughput": thr, "attention": att}


if __name__ == "__main__":
    import sys

    if "--plans" in sys.argv:
        for sc, width in (("tiny", None), ("small", None), ("small", "base")):
            print_plans(packed_plans(sc, num_sequences=4, repeats=5, width_scale=width), f"{sc}, width of {width or sc}")
    else:
        main()
