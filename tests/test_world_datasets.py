"""World and folder datasets, size buckets, collate, export."""

import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from sora_mini.config import get_config
from sora_mini.world.datasets import (
    BucketBatchSampler,
    FolderVideoDataset,
    WorldDataset,
    collate,
    export_world_samples,
)
from sora_mini.world.render import render

SIZES = ((32, 32), (32, 48), (48, 32))
FRAMES = (1, 5)


def test_world_items_are_deterministic_and_well_formed():
    ds = WorldDataset(12, seed=3, sizes=SIZES, frames=FRAMES)
    for i in (0, 5, 11):
        a, b = ds[i], ds[i]
        t, h, w = ds.size_of(i)
        assert a["size"] == (t, h, w) and a["video"].shape == (3, t, h, w)
        assert a["video"].dtype == torch.float32 and torch.equal(a["video"], b["video"])
        assert -1.0 <= a["video"].min() and a["video"].max() <= 1.0
        assert a["caption"] and a["detailed_caption"] and a["spec"] == b["spec"]
        video, _ = render(a["spec"], h, w, t)  # the item is exactly the rendered spec
        assert torch.allclose(a["video"], torch.from_numpy(video).permute(3, 0, 1, 2).float() / 127.5 - 1)
    assert WorldDataset(12, seed=4, sizes=SIZES, frames=FRAMES)[0]["spec"] != ds[0]["spec"]
    assert {ds.size_of(i) for i in range(12)} <= {(t, h, w) for t in FRAMES for h, w in SIZES}
    with pytest.raises(IndexError):
        ds[12]


def test_uint8_output_and_config():
    ds = WorldDataset(2, sizes=((32, 32),), frames=(3,), output="uint8", captions=False)
    item = ds[1]
    assert item["video"].dtype == torch.uint8 and item["video"].shape == (3, 32, 32, 3)
    assert "caption" not in item
    cfg = get_config("tiny").world
    train, ev = WorldDataset.from_config(cfg), WorldDataset.from_config(cfg, "eval")
    assert len(train) == cfg.train_videos and len(ev) == cfg.eval_videos
    assert train.spec(0) != ev.spec(0)
    with pytest.raises(ValueError, match="height 8"):
        WorldDataset(2, sizes=((8, 32),))


def test_bucket_sampler_groups_equal_sizes_and_covers_everything():
    ds = WorldDataset(40, seed=1, sizes=SIZES, frames=FRAMES, captions=False)
    sampler = BucketBatchSampler(ds, batch_size=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert sorted(i for b in batches for i in b) == list(range(40))
    assert all(len({ds.size_of(i) for i in b}) == 1 for b in batches)
    assert all(1 <= len(b) <= 4 for b in batches)
    assert list(sampler) == batches  # reproducible
    sampler.set_epoch(1)
    assert list(sampler) != batches
    dropped = BucketBatchSampler(ds, batch_size=4, drop_last=True)
    assert all(len(b) == 4 for b in dropped)
    loader = DataLoader(ds, batch_sampler=BucketBatchSampler(ds, 3), collate_fn=collate)
    batch = next(iter(loader))
    t, h, w = batch["size"]
    assert batch["video"].shape[1:] == (3, t, h, w) and len(batch["spec"]) == batch["video"].shape[0]


def test_collate_refuses_mixed_sizes():
    ds = WorldDataset(40, seed=1, sizes=SIZES, frames=FRAMES, captions=False)
    i = next(j for j in range(1, 40) if ds.size_of(j) != ds.size_of(0))
    with pytest.raises(ValueError, match="BucketBatchSampler"):
        collate([ds[0], ds[i]])


@pytest.mark.parametrize("fmt", ["gif", "npz"])
def test_export_then_folder_reads_back_exactly(tmp_path, fmt):
    paths = export_world_samples(tmp_path, 3, seed=2, sizes=((32, 48),), frames=(5,), fmt=fmt)
    assert all(p.exists() and p.with_suffix(".txt").exists() and p.with_suffix(".json").exists() for p in paths)
    folder = FolderVideoDataset(tmp_path, output="uint8")
    world = WorldDataset(3, seed=2, sizes=((32, 48),), frames=(5,), output="uint8")
    assert len(folder) == 3
    for i in range(3):
        assert np.array_equal(folder[i]["video"].numpy(), world[i]["video"].numpy())  # lossless
        assert folder[i]["caption"] == world[i]["caption"] and folder[i]["spec"] == world[i]["spec"]


def test_folder_reports_and_skips_bad_clips(tmp_path):
    export_world_samples(tmp_path, 2, fmt="gif", frames=(3,))
    (tmp_path / "broken.gif").write_bytes(b"GIF89a this is not a gif")
    (tmp_path / "broken.txt").write_text("a red circle")
    (tmp_path / "empty.npz").write_bytes(b"")
    (tmp_path / "empty.txt").write_text("a blue square")
    export_world_samples(tmp_path / "x", 1, fmt="npz", frames=(3,))
    (tmp_path / "x" / "world_00000.npz").rename(tmp_path / "nocaption.npz")
    (tmp_path / "blank.npz").write_bytes((tmp_path / "nocaption.npz").read_bytes())
    (tmp_path / "blank.txt").write_text("  \n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = FolderVideoDataset(tmp_path)
    messages = " | ".join(str(w.message) for w in caught)
    for name in ("broken.gif", "empty.npz", "nocaption.npz", "blank.npz"):
        assert name in messages
    assert len(ds) == 2 and ds[0]["video"].shape == (3, 3, 32, 32)


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FolderVideoDataset(tmp_path / "missing")
    with pytest.raises(ValueError, match="no video clips"):
        FolderVideoDataset(tmp_path)
    (tmp_path / "a.gif").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of the 1 clips"):
            FolderVideoDataset(tmp_path)
