"""Train CLIP or the captioner at the ``small`` model sizes for N minutes on 1024 world videos
(9x32x32) and report held-out figures (128 videos): CLIP recall@1/@5 both ways, captioner
attribute accuracy and the unparseable share.

    PYTHONPATH=$PWD python benchmarks/bench_text.py clip 5
    PYTHONPATH=$PWD python benchmarks/bench_text.py captioner 4
"""

import dataclasses
import json
import sys
import time

import torch

from sora_mini.text.captioner import VideoCaptioner
from sora_mini.text.clip import VideoTextCLIP, retrieval_recall
from sora_mini.text.config import get_text_config
from sora_mini.text.data import CaptionedVideos
from sora_mini.text.scoring import evaluate_captioner
from sora_mini.train.text import train_captioner, train_clip


def main(part: str = "clip", minutes: float = 5.0) -> dict:
    cfg = get_text_config("small")
    torch.manual_seed(0)
    train = CaptionedVideos(1024, seed=0, sizes=((32, 32),), frames=(9,))
    held = CaptionedVideos(128, seed=1_000_003, sizes=((32, 32),), frames=(9,))
    start = []

    def stop_after(trainer, step, metrics):
        if not start:
            start.append(time.time())
        if time.time() - start[0] > minutes * 60:
            trainer.stop = True

    t = time.time()
    if part == "clip":
        model = VideoTextCLIP(cfg.clip)
        recipe = dataclasses.replace(cfg.clip_train, steps=400, warmup_steps=20)
        history = train_clip(model, train, recipe, progress=False, callbacks=[stop_after])
        vids = [held.model_video(i) for i in range(len(held))]
        model.eval()
        held_out = {"detailed": retrieval_recall(model, vids, held.detailed),
                    "short": retrieval_recall(model, vids, held.short)}
    elif part == "captioner":
        model = VideoCaptioner(cfg.captioner)
        recipe = dataclasses.replace(cfg.captioner_train, steps=400, warmup_steps=20)
        history = train_captioner(model, train, recipe, progress=False, callbacks=[stop_after])
        held_out = evaluate_captioner(model.eval(), held)
    else:
        raise SystemExit(f"unknown part {part!r}; use 'clip' or 'captioner'")
    seconds = time.time() - t
    out = {"part": part, "steps": history[-1]["step"], "train_s": round(seconds, 1),
           "s_per_step": round(seconds / history[-1]["step"], 2), "final": history[-1], "held_out": held_out}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "clip", float(sys.argv[2]) if len(sys.argv) > 2 else 5.0)
