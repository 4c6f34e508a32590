"""The text-to-video training on several processes (DDP): a rank's part of a step's batch is its
own examples repacked, the shards' losses average to the global batch's loss (and their gradients
to its gradient), and ``train_pipeline`` under torchrun on 2 CPU processes ends where 1 process on
the same global batches does (fp32, to ``ATOL``).

Run by torchrun, ``torchrun --standalone --nproc_per_node 2 tests/test_train_video_distributed.py
RUN_ROOT`` trains the 2-process run the test compares."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from sora_mini.artifacts.autoencoder import autoencoder_dir
from sora_mini.artifacts.store import LOG_NAME, TRAINER_NAME, training_info
from sora_mini.artifacts.video import video_training
from sora_mini.checkpoint import load_checkpoint
from sora_mini.models.video_dit import VideoDiT
from sora_mini.pipeline import is_pipeline_dir, train_pipeline, trained_dir
from sora_mini.train.distributed import shard
from sora_mini.train.video import (
    LatentVideos,
    VideoBatches,
    VideoRecipe,
    flow_objective,
    packed_flow_loss,
)

torch.set_num_threads(1)

OVERRIDES = {"steps": 4, "precision": "fp32", "log_every": 1}  # 4 optimiser steps of the tiny recipe
ATOL = 1e-5  # fp32 weights after 4 AdamW steps: the sums over tokens and ranks run in another order


def _videos(n: int = 12, dim: int = 6) -> LatentVideos:
    """``n`` latents [4, t, 4, 4 or 8] of three sizes (4, 12 and 24 tokens at patch (1, 2, 2))."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 1, 4, 4), (4, 3, 4, 4), (4, 3, 4, 8)]
    latents = [torch.randn(shapes[i % 3], generator=gen).to(torch.bfloat16) for i in range(n)]
    text = torch.randn(n, 5, dim, generator=gen).to(torch.bfloat16)
    mask = torch.ones(n, 5, dtype=torch.bool)
    mask[::2, 3:] = False
    null = torch.full((1, 2, dim), 7.0).to(torch.bfloat16)
    return LatentVideos(latents, [f"c{i}" for i in range(n)], text, mask, null, torch.ones(1, 2, dtype=torch.bool),
                        [(1, 16, 16)] * n)


def _examples(batch) -> list[dict]:
    """Every example of a batch with what the loss sees of it: tokens, noise, given, t, caption."""
    packed = batch["packed"]
    per_slot = {"tokens": packed.tokens, "coords": packed.coords, "noise": batch["noise"], "given": batch["given"]}
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in per_slot.items()}  # [S*L, ...]
    slots = packed.flat_index().split(packed.lengths)
    return [{**{k: v[s] for k, v in flat.items()}, "t": batch["t"][i], "text": batch["text"][i],
             "text_mask": batch["text_mask"][i]} for i, s in enumerate(slots)]


@pytest.mark.parametrize("world", [2, 3])
def test_rank_shards_partition_the_examples_of_the_global_batch(world):
    batches = VideoBatches(_videos(), VideoRecipe(pack_length=32, tokens_per_step=100, caption_dropout=0.5), (1, 2, 2))
    batch = batches(5)
    assert bool(batch["given"].any()) and shard(batch, 0, 1) is batch  # one process: nothing cut
    parts = [shard(batch, r, world) for r in range(world)]
    every = _examples(batch)
    seen = [None] * len(every)
    for r, part in enumerate(parts):
        assert not bool((part["given"] & part["packed"].padding).any())
        assert part["packed"].max_len == 32 and part["shards"] == world
        assert part["generated"] == int((batch["packed"].valid & ~batch["given"]).sum())
        for j, example in enumerate(_examples(part)):
            i = r + j * world  # rank r holds the examples r, r + world, ...
            assert seen[i] is None
            seen[i] = example
    assert all(s is not None for s in seen), "an example of the global batch is on no rank"
    for mine, theirs in zip(seen, every):
        for key, value in theirs.items():
            assert torch.equal(torch.as_tensor(mine[key]), torch.as_tensor(value)), key
    assert sum(p["tokens"] for p in parts) == batch["tokens"]
    with pytest.raises(ValueError, match="examples for 64 processes"):
        shard(batch, 0, 64)


@pytest.mark.parametrize("attention,motion_weight", [("full", None), ("factorized", None), ("full", 1.0)])
def test_shard_losses_average_to_the_global_loss_and_gradient(attention, motion_weight):
    """What DDP computes (the mean over ranks of each shard's gradient) is the global batch's
    gradient: the loss of a shard is normalised by the global count of generated tokens."""
    torch.manual_seed(0)
    model = VideoDiT(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, attention=attention,
                     frame_cond="in_place", text_cond="cross_attn", text_dim=6)
    batch = VideoBatches(_videos(), VideoRecipe(pack_length=32, tokens_per_step=100, caption_dropout=0.5), (1, 2, 2))(2)
    loss_fn = packed_flow_loss(flow_objective(VideoRecipe()), motion_weight)

    def loss_and_grads(b):
        model.zero_grad()
        loss, _ = loss_fn(model, b)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]

    loss, grads = loss_and_grads(batch)
    assert bool(batch["given"].any())  # some examples have given frames, left out of the count
    for world in (2, 3):
        shards = [loss_and_grads(shard(batch, r, world)) for r in range(world)]
        torch.testing.assert_close(sum(s[0] for s in shards) / world, loss, atol=1e-6, rtol=0)
        for i, g in enumerate(grads):
            torch.testing.assert_close(sum(s[1][i] for s in shards) / world, g, atol=1e-6, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
def _run_root(path: Path, tiny_run_root: Path) -> Path:
    """A run root holding only the tiny autoencoder (the text-to-video run encodes its latents)."""
    shutil.copytree(autoencoder_dir("tiny", kind="3d_kl", run_root=tiny_run_root),
                    autoencoder_dir("tiny", kind="3d_kl", run_root=path))
    return path


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="this torch build has no torch.distributed with the gloo backend")
def test_two_processes_train_the_tiny_pipeline_like_one_process(tiny_run_root, tmp_path):
    here = Path(__file__).resolve()
    ddp_root = _run_root(tmp_path / "ddp", tiny_run_root)
    env = {**os.environ, "PYTHONPATH": str(here.parents[1]), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(here),
           str(ddp_root)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    one_root = _run_root(tmp_path / "one", tiny_run_root)
    one = train_pipeline("tiny", run_root=one_root, progress=False, **OVERRIDES)
    two = trained_dir("tiny", run_root=ddp_root, **OVERRIDES)
    assert is_pipeline_dir(two) and training_info(two)["result"]["processes"] == 2  # saved by rank 0
    assert training_info(one)["result"]["processes"] == 1
    state2, _, meta2 = load_checkpoint(two / TRAINER_NAME)
    state1, _, meta1 = load_checkpoint(one / TRAINER_NAME)
    assert (meta2["step"], meta2["world_size"], meta1["world_size"]) == (4, 2, 1)
    names = [k for k in state1 if k.startswith(("model/", "ema/"))]
    assert names and set(names) <= set(state2)
    for name in names:  # the weights, and the EMA the pipeline's transformer holds
        torch.testing.assert_close(state2[name], state1[name], atol=ATOL, rtol=0, msg=name)
    torch.manual_seed(video_training("tiny", **OVERRIDES).recipe.seed)  # the initial weights, as trained
    initial = VideoDiT(video_training("tiny", **OVERRIDES).model).state_dict()
    assert max(float((state1[f"model/{k}"] - v).abs().max()) for k, v in initial.items()) > 100 * ATOL  # they moved
    rows2, rows1 = ([json.loads(line) for line in (d / LOG_NAME).read_text().splitlines()] for d in (two, one))
    assert [r["step"] for r in rows2] == [1, 2, 3, 4]  # written by rank 0 alone
    assert [r["loss"] for r in rows2] == pytest.approx([r["loss"] for r in rows1], abs=ATOL)
    assert [r["tokens"] for r in rows2] == [r["tokens"] for r in rows1]  # the shards' tokens add up


if __name__ == "__main__":
    train_pipeline("tiny", run_root=Path(sys.argv[1]), progress=False, **OVERRIDES)
