"""Datasets of videos with captions: the procedural world, and a folder of the user's own clips.

Every item is a dict; ``video`` is float32 ``[3, T, H, W]`` in ``[-1, 1]`` (``output="float"``, what
models take) or uint8 ``[T, H, W, 3]`` (``output="uint8"``, what viewers and files take). Videos of
different sizes are batched by ``BucketBatchSampler``, which puts only equal ``(T, H, W)`` in a
batch, and ``collate`` (native sizes, no cropping: the Sora report's argument, after NaViT).
"""

from __future__ import annotations

import random
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from sora_mini.convert import video_to_model
from sora_mini.videoio import read_video, write_video
from sora_mini.world.render import check_size, render
from sora_mini.world.sample import sample_spec, spec_seed
from sora_mini.world.spec import SceneSpec

OUTPUTS = ("float", "uint8")
CLIP_SUFFIXES = (".mp4", ".gif", ".npz")


def to_model_video(video: np.ndarray, output: str = "float"):
    """uint8 ``[T, H, W, 3]`` -> float32 ``[3, T, H, W]`` in [-1, 1] (``"float"``) or a uint8 tensor."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
    if output == "uint8":
        return torch.from_numpy(np.ascontiguousarray(video))  # [T, H, W, 3]
    return video_to_model(video)[0]  # [3, T, H, W]


class WorldDataset(Dataset):
    """``n`` rendered world videos; item ``i`` is the same every time (seeded by ``(seed, i)``).

    Item: ``video`` (see module doc), ``caption`` (short) and ``detailed_caption`` (when
    ``captions``), ``spec`` (SceneSpec), ``annotations`` (Annotations), ``size`` ``(T, H, W)``,
    ``index``. Each item draws its ``(H, W)`` from ``sizes`` and its ``T`` from ``frames``.
    """

    def __init__(self, n: int, seed: int = 0, sizes=((32, 32),), frames=(9,), *, max_objects: int = 3,
                 motions=None, captions: bool = True, output: str = "float"):
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        self.sizes = [tuple(int(v) for v in s) for s in sizes]
        self.frames = [int(t) for t in frames]
        if not self.sizes or not self.frames:
            raise ValueError("give at least one (height, width) in sizes and one duration in frames")
        for (h, w) in self.sizes:
            for t in self.frames:
                check_size(h, w, t)
        self.n, self.seed, self.max_objects, self.motions = int(n), int(seed), max_objects, motions
        self.captions, self.output = captions, output

    @classmethod
    def from_config(cls, world_cfg, split: str = "train", seed: int = 0, **kw) -> WorldDataset:
        """The training or evaluation mix of a ``WorldConfig`` (the eval split uses other seeds)."""
        if split not in ("train", "eval"):
            raise ValueError(f"unknown split {split!r}; use 'train' or 'eval'")
        n = world_cfg.train_videos if split == "train" else world_cfg.eval_videos
        return cls(n, seed=seed if split == "train" else seed + 1_000_003, sizes=world_cfg.sizes,
                   frames=world_cfg.frames, max_objects=world_cfg.max_objects, **kw)

    def __len__(self) -> int:
        return self.n

    def _check(self, i: int) -> int:
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for a WorldDataset of {self.n} videos")
        return i % self.n if self.n else i

    def size_of(self, i: int) -> tuple[int, int, int]:
        """``(T, H, W)`` of item ``i`` without rendering it (for bucketing)."""
        rng = random.Random(f"{self.seed}/{self._check(i)}/size")  # string seeds hash stably (sha512)
        h, w = rng.choice(self.sizes)
        return rng.choice(self.frames), h, w

    def spec(self, i: int) -> SceneSpec:
        return sample_spec(spec_seed(self.seed, self._check(i)), max_objects=self.max_objects,
                           motions=self.motions)

    def __getitem__(self, i: int) -> dict:
        i = self._check(i)
        spec = self.spec(i)
        t, h, w = self.size_of(i)
        video, ann = render(spec, h, w, t)
        item = {"video": to_model_video(video, self.output), "spec": spec, "annotations": ann,
                "size": (t, h, w), "index": i}
        if self.captions:
            from sora_mini.world.captions import detailed_caption, short_caption

            item["caption"], item["detailed_caption"] = short_caption(spec), detailed_caption(spec)
        return item


class BucketBatchSampler(Sampler):
    """Batches of indexes whose items have equal ``(T, H, W)``; shuffled per epoch when asked.

    ``sizes``: a dataset with ``size_of(i)`` or ``sizes`` (a list), or a list of ``(T, H, W)``.
    """

    def __init__(self, sizes, batch_size: int, *, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if hasattr(sizes, "size_of"):
            sizes = [sizes.size_of(i) for i in range(len(sizes))]
        elif hasattr(sizes, "clip_sizes"):
            sizes = sizes.clip_sizes
        self.buckets: dict[tuple, list[int]] = defaultdict(list)
        for i, s in enumerate(sizes):
            self.buckets[tuple(s)].append(i)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """A different (still reproducible) order for each epoch."""
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = []
        for key in sorted(self.buckets):
            idx = np.array(self.buckets[key])
            if self.shuffle:
                idx = rng.permutation(idx)
            for s in range(0, len(idx), self.batch_size):
                b = idx[s: s + self.batch_size].tolist()
                if len(b) == self.batch_size or not self.drop_last:
                    batches.append(b)
        if self.shuffle:
            batches = [batches[j] for j in rng.permutation(len(batches))]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def collate(items: list[dict]) -> dict:
    """Items of one size -> a batch: ``video`` stacked (``[B, 3, T, H, W]`` or ``[B, T, H, W, 3]``),
    ``index`` a tensor, every other key a list (``size`` once, as ``(T, H, W)``)."""
    if not items:
        raise ValueError("collate got an empty batch")
    sizes = {tuple(it["size"]) for it in items}
    if len(sizes) > 1:
        raise ValueError(f"a batch mixes sizes {sorted(sizes)}; batch with BucketBatchSampler "
                         "so each batch holds one (T, H, W)")
    batch = {"video": torch.stack([it["video"] for it in items]), "size": sizes.pop()}
    for key in items[0]:
        if key == "index":
            batch[key] = torch.tensor([it[key] for it in items])
        elif key not in batch:
            batch[key] = [it.get(key) for it in items]
    return batch


class FolderVideoDataset(Dataset):
    """Clips in a folder (``.mp4``, ``.gif``, ``.npz``), each with a same-name ``.txt`` caption.

    A clip that cannot be read or has no frames, or has no (or an empty) caption, is skipped with
    a warning naming the file; a folder with no usable clip is an error. A ``.json`` scene spec next to
    a clip (as ``export_world_samples`` writes) is loaded into ``spec``. Item: ``video``,
    ``caption``, ``spec`` (or None), ``size`` ``(T, H, W)``, ``path``, ``index``.
    """

    def __init__(self, folder, *, output: str = "float", cache: bool = True):
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"video folder {folder} does not exist (or is not a folder)")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; choose one of {', '.join(OUTPUTS)}")
        self.folder, self.output, self.cache = folder, output, cache
        clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in CLIP_SUFFIXES and p.is_file())
        if not clips:
            raise ValueError(f"no video clips in {folder}: put {'/'.join(CLIP_SUFFIXES)} files there, "
                             "each with a same-name .txt caption")
        self.paths, self.captions, self.clip_sizes, self.specs, self._videos = [], [], [], [], []
        for path in clips:
            entry = self._load(path)
            if entry is None:
                continue
            caption, video, spec = entry
            self.paths.append(path)
            self.captions.append(caption)
            self.clip_sizes.append(tuple(video.shape[:3]))
            self.specs.append(spec)
            self._videos.append(video if cache else None)
        if not self.paths:
            raise ValueError(f"none of the {len(clips)} clips in {folder} is usable (see the warnings)")

    @staticmethod
    def _load(path: Path):
        txt = path.with_suffix(".txt")
        if not txt.exists():
            warnings.warn(f"skipping {path}: no caption file {txt.name}", stacklevel=3)
            return None
        caption = txt.read_text(encoding="utf-8").strip()
        if not caption:
            warnings.warn(f"skipping {path}: its caption file {txt.name} is empty", stacklevel=3)
            return None
        try:
            video = read_video(path)
        except Exception as e:  # noqa: BLE001 - any decoder failure means an unusable clip
            warnings.warn(f"skipping {path}: cannot read it ({e})", stacklevel=3)
            return None
        if video.shape[0] == 0 or min(video.shape[1:3]) < 1:
            warnings.warn(f"skipping {path}: it holds no frames", stacklevel=3)
            return None
        spec = None
        js = path.with_suffix(".json")
        if js.exists():
            try:
                spec = SceneSpec.from_json(js.read_text(encoding="utf-8"))
            except ValueError as e:
                warnings.warn(f"{js}: not a scene spec ({e}); the clip is kept without one", stacklevel=3)
        return caption, video, spec

    def __len__(self) -> int:
        return len(self.paths)

    def size_of(self, i: int) -> tuple[int, int, int]:
        return self.clip_sizes[i]

    def __getitem__(self, i: int) -> dict:
        video = self._videos[i] if self.cache else read_video(self.paths[i])
        return {"video": to_model_video(video, self.output), "caption": self.captions[i],
                "spec": self.specs[i], "size": self.clip_sizes[i], "path": str(self.paths[i]), "index": i}


def export_world_samples(folder, n: int, seed: int = 0, sizes=((32, 32),), frames=(9,), fmt: str = "gif",
                         *, fps: float = 8, caption: str = "short", **kw) -> list[Path]:
    """Write ``n`` world videos to ``folder`` as ``world_00000.<fmt>`` + ``.txt`` caption + ``.json`` spec.

    ``fmt``: gif (lossless here), mp4 (lossy) or npz (lossless); ``caption``: "short" or "detailed".
    The folder then reads back with ``FolderVideoDataset``. Returns the video paths.
    """
    fmt = fmt.lower().lstrip(".")
    if "." + fmt not in CLIP_SUFFIXES:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(s[1:] for s in CLIP_SUFFIXES)}")
    if caption not in ("short", "detailed"):
        raise ValueError(f"caption must be 'short' or 'detailed', got {caption!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ds = WorldDataset(n, seed, sizes, frames, output="uint8", **kw)
    paths = []
    for i in range(n):
        item = ds[i]
        path = folder / f"world_{i:05d}.{fmt}"
        write_video(path, item["video"].numpy(), fps=fps)
        text = item["caption"] if caption == "short" else item["detailed_caption"]
        path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
        path.with_suffix(".json").write_text(item["spec"].to_json(indent=1), encoding="utf-8")
        paths.append(path)
    return paths
