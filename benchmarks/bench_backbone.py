"""Our video DiT's training step vs diffusers' LatteTransformer3DModel, and its achieved FLOP/s.

Figures, side by side in one run on this CPU:
(1) time per training step (forward, backward, AdamW) and peak memory (the process's peak RSS
    above its RSS before the first step) of our factorized video DiT with caption cross-attention
    and of ``diffusers.LatteTransformer3DModel`` (adaLN-single, spatial blocks with cross-attention,
    temporal blocks): same width, heads, patch, tokens, caption tokens, and the same number of
    blocks (Latte's ``num_layers`` counts spatial+temporal pairs, so ours has depth = 2 x that);
    in fp32 and under bf16 autocast. Each measurement runs in its own subprocess, so one model's
    freed memory cannot hide the other's peak. Times are the best of the timed steps (the least
    noisy figure on a shared machine; the median is stored too).
(2) model FLOP/s of our bf16 training step (FLOPs counted by ``torch.utils.flop_counter``) over
    this machine's bf16 matmul FLOP/s (best square [2048, 2048] matmul), both measured in the same
    process, the matmul before and after the steps.
(3) both again with one thread (bf16): on a machine shared with other jobs, two threads that wait
    for each other at every op barrier make the default-thread figures swing by 2x or more.
Targets: ours at least as fast as Latte; achieved / matmul >= 0.5.
Run: ``.venv/bin/python benchmarks/bench_backbone.py`` (``main(quick=True)``: a smaller model).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time

FULL = {"width": 512, "heads": 8, "layers": 4, "channels": 4, "frames": 8, "size": 16, "patch": 2,
        "batch": 2, "text_tokens": 16, "steps": 3, "warmup": 1, "matmul_n": 2048}
QUICK = {"width": 128, "heads": 4, "layers": 2, "channels": 4, "frames": 4, "size": 8, "patch": 2,
         "batch": 2, "text_tokens": 8, "steps": 2, "warmup": 1, "matmul_n": 1024}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _build(kind: str, c: dict):
    import torch

    if kind == "ours":
        from sora_mini.models import VideoDiT

        return VideoDiT(in_channels=c["channels"], patch_size=(1, c["patch"], c["patch"]), hidden_size=c["width"],
                        depth=2 * c["layers"], num_heads=c["heads"], attention="factorized", text_cond="cross_attn",
                        text_dim=c["width"])
    from diffusers import LatteTransformer3DModel

    torch.manual_seed(0)
    return LatteTransformer3DModel(
        num_attention_heads=c["heads"], attention_head_dim=c["width"] // c["heads"], in_channels=c["channels"],
        out_channels=c["channels"], num_layers=c["layers"], cross_attention_dim=c["width"], attention_bias=True,
        sample_size=c["size"], patch_size=c["patch"], activation_fn="gelu-approximate", norm_type="ada_norm_single",
        norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=c["width"], video_length=c["frames"])


def worker(kind: str, precision: str, c: dict, count_flops: bool) -> dict:
    """One measurement (run in a fresh process): median step time, peak RSS, FLOPs per step."""
    import statistics

    import torch

    from sora_mini.train.device import autocast_for

    if c.get("threads"):
        torch.set_num_threads(int(c["threads"]))
    torch.manual_seed(0)
    model = _build(kind, c).train()
    B = c["batch"]
    x = torch.randn(B, c["channels"], c["frames"], c["size"], c["size"])
    t = torch.randint(0, 1000, (B,))
    text = torch.randn(B, c["text_tokens"], c["width"])
    target = torch.randn_like(x)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        # a CPU benchmark of each precision as such: "bf16" is bf16 autocast even where it is emulated
        with autocast_for("cpu", "bf16-always" if precision == "bf16" else precision):
            if kind == "ours":
                out = model(x, t.float(), text=text)
            else:
                out = model(x, timestep=t, encoder_hidden_states=text).sample
            loss = torch.nn.functional.mse_loss(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    base = _rss_mib()
    matmul = [matmul_flops(c["matmul_n"])] if count_flops else []
    times = []
    for i in range(c["warmup"] + c["steps"]):
        t0 = time.perf_counter()
        step()
        if i >= c["warmup"]:
            times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    out = {"step_s": min(times), "step_s_median": statistics.median(times), "peak_mib": round(peak - base, 1),
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "threads": torch.get_num_threads()}
    if count_flops:
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as counter:
            step()
        out["flops"] = counter.get_total_flops()
        out["matmul_flops"] = max(matmul + [matmul_flops(c["matmul_n"])])
    return out


def matmul_flops(n: int = 2048, reps: int = 5, dtype: str = "bf16") -> float:
    """This machine's matmul FLOP/s in ``dtype`` ("bf16" or "fp32"): the best of ``reps`` square
    [n, n] @ [n, n] products."""
    import torch

    kind = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    a, b = torch.randn(n, n, dtype=kind), torch.randn(n, n, dtype=kind)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _run(kind: str, precision: str, c: dict, count_flops: bool = False) -> dict:
    arg = json.dumps({"kind": kind, "precision": precision, "c": c, "count_flops": count_flops})
    proc = subprocess.run([sys.executable, __file__, "--worker", arg], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark worker {kind}/{precision} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(quick: bool = False) -> dict:
    c = QUICK if quick else FULL
    tokens = c["frames"] * (c["size"] // c["patch"]) ** 2
    print(f"video DiT training step vs diffusers Latte: width {c['width']}, heads {c['heads']}, "
          f"{2 * c['layers']} blocks, patch {c['patch']}, {tokens} tokens x batch {c['batch']}, "
          f"{c['text_tokens']} caption tokens")
    res = {"config": c, "tokens": tokens}
    for precision in ("fp32", "bf16"):
        ours = _run("ours", precision, c, count_flops=precision == "bf16")
        latte = _run("latte", precision, c)
        res[precision] = {"ours": ours, "latte": latte, "speedup": latte["step_s"] / ours["step_s"],
                          "memory_ratio": ours["peak_mib"] / max(latte["peak_mib"], 1e-6)}
        print(f"  {precision}: ours {ours['step_s'] * 1e3:8.1f} ms/step, peak +{ours['peak_mib']:7.1f} MiB "
              f"({ours['params_m']:.2f} M params) | Latte {latte['step_s'] * 1e3:8.1f} ms/step, peak "
              f"+{latte['peak_mib']:7.1f} MiB ({latte['params_m']:.2f} M params) | Latte/ours time "
              f"{res[precision]['speedup']:.2f}x, ours/Latte memory {res[precision]['memory_ratio']:.2f}x")
    peak = res["bf16"]["ours"]["matmul_flops"]
    achieved = res["bf16"]["ours"]["flops"] / res["bf16"]["ours"]["step_s"]
    res.update(matmul_gflops=peak / 1e9, achieved_gflops=achieved / 1e9, mfu=achieved / peak,
               step_gflop=res["bf16"]["ours"]["flops"] / 1e9)
    print(f"  ours bf16: {res['step_gflop']:.1f} GFLOP per step -> {achieved / 1e9:.1f} GFLOP/s achieved; "
          f"bf16 matmul {peak / 1e9:.1f} GFLOP/s; ratio {res['mfu']:.2f} (target >= 0.5)")
    one = {**c, "threads": 1}
    ours1, latte1 = _run("ours", "bf16", one, count_flops=True), _run("latte", "bf16", one)
    res["bf16_1thread"] = {"ours": ours1, "latte": latte1, "speedup": latte1["step_s"] / ours1["step_s"],
                           "mfu": ours1["flops"] / ours1["step_s"] / ours1["matmul_flops"]}
    print(f"  1 thread, bf16: ours {ours1['step_s'] * 1e3:8.1f} ms/step | Latte {latte1['step_s'] * 1e3:8.1f} ms/step "
          f"| Latte/ours time {res['bf16_1thread']['speedup']:.2f}x | ours {ours1['flops'] / ours1['step_s'] / 1e9:.1f} "
          f"GFLOP/s of {ours1['matmul_flops'] / 1e9:.1f} matmul: ratio {res['bf16_1thread']['mfu']:.2f}")
    print(f"  target ours >= Latte speed: fp32 {'met' if res['fp32']['speedup'] >= 1 else 'NOT met'}, "
          f"bf16 {'met' if res['bf16']['speedup'] >= 1 else 'NOT met'}, 1-thread bf16 "
          f"{'met' if res['bf16_1thread']['speedup'] >= 1 else 'NOT met'}; default threads "
          f"{res['bf16']['ours']['threads']}")
    return res


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        a = json.loads(sys.argv[2])
        print(json.dumps(worker(a["kind"], a["precision"], a["c"], a["count_flops"])))
    else:
        main(quick="--quick" in sys.argv)
