"""Encode + decode throughput of the video autoencoders on the CPU, in videos per second.

Sizes: 17 x 32 x 32 and 17 x 36 x 64 (T x H x W; 17 = 1 + 16 is the causal length nearest 16
frames, so the 3D model with temporal factor 2 or 4 takes it as is). Each autoencoder kind at the
``small`` preset's width, batch 1 and batch 8, fp32 and bf16 autocast, ``torch.no_grad``.
Timings on a shared machine are noisy: compare ratios within one run.
"""

from __future__ import annotations

import time

import torch

SIZES = ((17, 32, 32), (17, 36, 64))


def _time(fn, repeat: int) -> float:
    fn()  # warm-up (allocations, oneDNN kernel choice)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


DEVICE = "cpu"  # what this benchmark measures


def main(quick: bool = False) -> dict:
    from sora_mini.artifacts import autoencoder_config
    from sora_mini.compression import VideoAutoencoder
    from sora_mini.train import autocast_for

    torch.manual_seed(0)
    kinds = ("3d_kl", "2d_kl") if quick else ("3d_kl", "2d_kl", "3d_vq", "3d_fsq")
    batches = (1,) if quick else (1, 8)
    repeat = 2 if quick else 5
    results: dict = {"threads": torch.get_num_threads(), "sizes": [list(s) for s in SIZES], "runs": []}
    print(f"autoencoder encode+decode, CPU, {torch.get_num_threads()} threads (best of {repeat})")
    print(f"{'kind':8s} {'size':>10s} {'batch':>5s} {'fp32 vid/s':>11s} {'bf16 vid/s':>11s} {'bf16/fp32':>9s}")
    for kind in kinds:
        model = VideoAutoencoder(autoencoder_config("small", kind)).eval()
        for (t, h, w) in SIZES:
            for b in batches:
                x = torch.rand(b, 3, t, h, w) * 2 - 1
                row = {"kind": kind, "size": [t, h, w], "batch": b}
                for prec in ("fp32", "bf16"):
                    def run(model=model, x=x, prec=prec):
                        with torch.no_grad(), autocast_for(DEVICE, prec):
                            model.decode(model.encode(x))
                    row[f"{prec}_videos_per_s"] = round(b / _time(run, repeat), 2)
                row["bf16_speedup"] = round(row["bf16_videos_per_s"] / row["fp32_videos_per_s"], 2)
                results["runs"].append(row)
                print(f"{kind:8s} {'x'.join(map(str, (t, h, w))):>10s} {b:5d} "
                      f"{row['fp32_videos_per_s']:11.2f} {row['bf16_videos_per_s']:11.2f} "
                      f"{row['bf16_speedup']:9.2f}")
    return results


if __name__ == "__main__":
    main()
