"""What a text part learns in a time budget: train CLIP or the captioner at the ``small`` model
sizes for N minutes on 1024 world videos (9x32x32) and report held-out figures (128 videos): CLIP
recall@1/@5 both ways, captioner attribute accuracy and the unparseable share.

    sora-mini study text-budget clip --minutes 5
    sora-mini study text-budget captioner --minutes 4
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import torch

from sora_mini.text.captioner import VideoCaptioner
from sora_mini.text.clip import VideoTextCLIP, retrieval_recall
from sora_mini.text.config import get_text_config
from sora_mini.text.data import CaptionedVideos
from sora_mini.text.scoring import evaluate_captioner
from sora_mini.train.text import train_captioner, train_clip


def run(part: str = "clip", minutes: float = 5.0) -> dict:
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


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="sora-mini study text-budget", description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=["clip", "captioner"])
    p.add_argument("--minutes", type=float, default=5.0)
    args = p.parse_args(argv)
    run(args.part, args.minutes)


if __name__ == "__main__":
    main()
