"""Video-caption batches for CLIP and the captioner, from the procedural world.

``CaptionedVideos(n, seed, sizes, frames)`` renders ``n`` world videos once (kept as uint8) with
their short and detailed captions and specs; ``batch(step, batch_size)`` is deterministic in
``step`` (a resumed run sees the same batches): it picks one ``(T, H, W)`` bucket, weighted by its
number of videos, and up to ``batch_size`` videos of it ->
``{"video": [B, 3, T, H, W] in [-1, 1], "short": [B] str, "detailed": [B] str, "specs": [B]}``.
"""

from __future__ import annotations

import random
from collections import defaultdict

import torch

from sora_mini.convert import video_to_model


class CaptionedVideos:
    """``n`` rendered world videos with captions (the held-out split: another ``seed``)."""

    def __init__(self, n: int, seed: int = 0, sizes=((32, 32),), frames=(9,), *, max_objects: int = 3):
        from sora_mini.world.datasets import WorldDataset

        if n < 1:
            raise ValueError(f"need at least one video, got n={n}")
        ds = WorldDataset(n, seed=seed, sizes=sizes, frames=frames, max_objects=max_objects,
                          output="uint8")
        self.seed = seed
        self.videos, self.short, self.detailed, self.specs = [], [], [], []
        self.buckets: dict[tuple, list[int]] = defaultdict(list)
        for i in range(n):
            item = ds[i]
            self.videos.append(item["video"])  # uint8 [T, H, W, 3]
            self.short.append(item["caption"])
            self.detailed.append(item["detailed_caption"])
            self.specs.append(item["spec"])
            self.buckets[item["size"]].append(i)
        self.sizes = sorted(self.buckets)

    def __len__(self) -> int:
        return len(self.videos)

    def model_video(self, i: int) -> torch.Tensor:
        """Video ``i`` as float ``[3, T, H, W]`` in [-1, 1]."""
        return video_to_model(self.videos[i])[0]

    def items(self, indexes) -> dict:
        idx = list(indexes)
        return {"video": video_to_model(torch.stack([self.videos[i] for i in idx])),
                "short": [self.short[i] for i in idx], "detailed": [self.detailed[i] for i in idx],
                "specs": [self.specs[i] for i in idx], "index": idx}

    def batch(self, step: int, batch_size: int) -> dict:
        """The batch of ``step``: one size bucket, up to ``batch_size`` distinct videos of it."""
        rng = random.Random(f"{self.seed}/{step}/text-batch")
        sizes = self.sizes
        size = rng.choices(sizes, weights=[len(self.buckets[s]) for s in sizes])[0]
        pool = self.buckets[size]
        return self.items(rng.sample(pool, min(batch_size, len(pool))))
