"""World videos for the autoencoders: batches at native sizes, and a held-out evaluation set.

Shapes: a batch is float ``[B, 3, T, H, W]`` in [-1, 1], every video of a batch one ``(T, H, W)``
(the world's ``BucketBatchSampler``); the sizes and durations are the scale's ``WorldConfig``.
"""

from __future__ import annotations

import torch

from sora_mini.config import step_seed
from sora_mini.convert import video_to_model
from sora_mini.patches.patchify import frames_fit, nearest_frame_counts
from sora_mini.world.datasets import BucketBatchSampler, WorldDataset


class WorldBatches:
    """``batches(step) -> [B, 3, T, H, W]``: world training videos bucketed by size, reshuffled
    each epoch, deterministic in ``step`` (so a resumed run sees the same batches).

    ``crop=(T, H, W)``: cut every video of a batch to one random window of at most that size (the
    same window size for the whole batch, a new place per video). A fully convolutional autoencoder
    sees the same objects at the same scale, for a fraction of the compute; it is still evaluated
    on whole videos at their native sizes. Rendered videos are cached as uint8.
    """

    def __init__(self, world_cfg, batch_size: int, seed: int = 0, split: str = "train",
                 spatial_factor: int = 1, temporal_factor: int = 1, crop: tuple | None = None):
        self.dataset = WorldDataset.from_config(world_cfg, split, seed=seed, captions=False,
                                                output="uint8")
        sizes = [self.dataset.size_of(i) for i in range(len(self.dataset))]
        keep = [i for i, (t, h, w) in enumerate(sizes)
                if frames_fit(t, temporal_factor) and h % spatial_factor == 0 and w % spatial_factor == 0]
        if not keep:
            raise ValueError(f"no world size in {world_cfg.sizes} x {world_cfg.frames} fits a spatial "
                             f"factor {spatial_factor} and temporal factor {temporal_factor}")
        self.indices = keep
        self.sampler = BucketBatchSampler([sizes[i] for i in keep], batch_size, shuffle=True,
                                          seed=seed, drop_last=True)
        self._epoch, self._batches = -1, []
        self._cache: dict[int, torch.Tensor] = {}
        self.seed, self.crop = seed, crop
        self.spatial_factor, self.temporal_factor = spatial_factor, temporal_factor

    def video(self, i: int) -> torch.Tensor:
        """Training video ``i`` as uint8 ``[T, H, W, 3]`` (rendered once, then cached)."""
        if i not in self._cache:
            self._cache[i] = self.dataset[i]["video"]  # uint8 [T, H, W, 3]
        return self._cache[i]

    def batch_indices(self, step: int) -> list[int]:
        n = len(self.sampler)
        if n == 0:
            raise ValueError("batch_size is larger than every size bucket; lower it or add videos")
        epoch, pos = divmod(step, n)
        if epoch != self._epoch:
            self.sampler.set_epoch(epoch)
            self._epoch, self._batches = epoch, list(self.sampler)
        return [self.indices[j] for j in self._batches[pos]]

    def _window(self, size: tuple[int, int, int]) -> tuple[int, int, int]:
        """The crop size for videos of ``size``: at most ``crop``, still ``1 + nk`` frames and a
        multiple of the spatial factor."""
        (t, h, w), (ct, ch, cw) = size, self.crop
        k, s = self.temporal_factor, self.spatial_factor
        t = nearest_frame_counts(min(t, ct), k)[0]  # the longest valid count that fits
        return t, max(s, min(h, ch) // s * s), max(s, min(w, cw) // s * s)

    def __call__(self, step: int) -> torch.Tensor:
        videos = [self.video(i) for i in self.batch_indices(step)]  # uint8 [T, H, W, 3] each
        if self.crop is not None:
            t, h, w = self._window(videos[0].shape[:3])
            g = torch.Generator().manual_seed(step_seed(self.seed, step))
            out = []
            for v in videos:
                t0, y0, x0 = (int(torch.randint(0, n - m + 1, (1,), generator=g))
                              for n, m in zip(v.shape[:3], (t, h, w)))
                out.append(v[t0:t0 + t, y0:y0 + h, x0:x0 + w])
            videos = out
        return video_to_model(torch.stack(videos))  # [B, 3, T, H, W]


def eval_videos(world_cfg, n: int | None = None, seed: int = 0) -> list[torch.Tensor]:
    """The first ``n`` held-out world videos (the ``eval`` split), each float ``[3, T, H, W]``."""
    ds = WorldDataset.from_config(world_cfg, "eval", seed=seed, captions=False)
    n = len(ds) if n is None else min(n, len(ds))
    return [ds[i]["video"] for i in range(n)]


def smooth_random_video(frames: int, height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A smooth random video ``[3, T, H, W]`` in [-1, 1] (low-frequency noise drifting in time),
    for tests that should not depend on the world."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randn(1, 3, frames + 2, max(2, height // 8), max(2, width // 8), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(frames + 2, height, width), mode="trilinear",
                                        align_corners=False)[0, :, 1:-1]
    return torch.tanh(x)
