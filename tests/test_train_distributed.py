"""Training on several processes with PyTorch's DDP: each rank trains on its shard of the global
batch, and 2 processes end where 1 process on the global batch does (fp32, to float rounding).

Run by torchrun, ``torchrun --standalone --nproc_per_node 2 tests/test_train_distributed.py OUT``
trains the 2-process run the test compares."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch import nn

from sora_mini.checkpoint import load_checkpoint
from sora_mini.train.distributed import cleanup, init_distributed, shard, step_seed, wrap_ddp
from sora_mini.train.loop import Trainer, TrainerConfig

torch.set_num_threads(1)

CFG = TrainerConfig(steps=10, lr=0.01, warmup_steps=2, ckpt_every=4, log_every=2, ema_decay=0.9,
                    precision="fp32", progress=False)
ATOL = 1e-5  # fp32: the shard means are averaged in another order than the global mean is summed


def global_batch(step: int) -> dict:
    """The global batch of ``step``, 8 rows, the same in every process; ``ids`` as a caption list."""
    g = torch.Generator().manual_seed(step)
    x = torch.randn(8, 4, generator=g)
    return {"x": x, "y": torch.sin(x.sum(1, keepdim=True)), "ids": list(range(8 * step, 8 * step + 8))}


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def loss_fn(model, batch):
    """A mean over the rows of the shard: DDP's average of the shards' gradients is then the global
    batch's gradient."""
    assert len(batch["ids"]) == len(batch["x"])
    loss = (model(batch["x"]) - batch["y"]).pow(2).mean()
    return loss, {"tokens": len(batch["x"]), "rows": len(batch["x"])}


def train_on_ranks(out: Path) -> None:
    """The torchrun side: every rank starts from other weights (DDP must copy rank 0's)."""
    info = init_distributed("cpu")
    model = wrap_ddp(mlp(seed=info.rank), info.device)
    Trainer(model, loss_fn, global_batch, CFG, device=info.device, ckpt_path=out / "run",
            log_path=out / "log.jsonl", model_config={"hidden": 16}).fit()
    cleanup()


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()),
                    reason="this torch build has no torch.distributed with the gloo backend")
def test_two_processes_train_like_one_process_on_the_global_batch(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(tmp_path / "ddp")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    alone = Trainer(mlp(), loss_fn, global_batch, CFG, ckpt_path=tmp_path / "one", model_config={"hidden": 16})
    alone.fit()
    state, _, meta = load_checkpoint(tmp_path / "ddp" / "run")
    assert meta["step"] == 10 and meta["world_size"] == 2
    for name, value in alone.model.state_dict().items():  # saved unwrapped: no "module." prefix
        torch.testing.assert_close(state[f"model/{name}"], value, atol=ATOL, rtol=0)
        torch.testing.assert_close(state[f"ema/{name}"], alone.ema.shadow[name], atol=ATOL, rtol=0)
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]  # written by rank 0 alone
    assert [r["loss"] for r in rows] == pytest.approx([r["loss"] for r in alone.history], abs=ATOL)
    assert {r["rows"] for r in rows} == {4.0}  # each rank saw half of the batch...
    assert {r["tokens"] for r in rows} == {16.0}  # ... and the tokens of both: 2 steps x 8 rows


# ----------------------------------------------------------------------------------------------
def test_shard_splits_every_tensor_and_list_of_a_global_batch_into_equal_parts():
    Pair = namedtuple("Pair", "video caption")
    samples = [torch.zeros(3, t) for t in range(1, 7)]  # a list of rows of different sizes
    batch = {"x": torch.arange(12).view(6, 2), "pair": Pair(torch.arange(6), list("abcdef")),
             "fields": (torch.arange(6), samples), "ids": range(6), "scale": torch.tensor(2.0), "name": "run"}
    parts = [shard(batch, r, 3) for r in range(3)]
    assert torch.equal(torch.cat([p["x"] for p in parts]), batch["x"])
    assert [p["pair"].caption for p in parts] == [["a", "b"], ["c", "d"], ["e", "f"]]
    assert isinstance(parts[1]["pair"], Pair) and parts[1]["pair"].video.tolist() == [2, 3]
    assert parts[1]["fields"][0].tolist() == [2, 3] and [v.shape[1] for v in parts[1]["fields"][1]] == [3, 4]
    assert list(parts[2]["ids"]) == [4, 5]
    assert parts[0]["scale"] is batch["scale"] and parts[0]["name"] == "run"  # no rows: as they are
    assert shard(batch, 0, 1) is batch
    with pytest.raises(ValueError, match="multiple of 4"):
        shard(batch, 0, 4)


def test_outside_torchrun_there_is_one_process_and_nothing_to_wrap(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, info.device.type) == (0, 1, "cpu") and not dist.is_initialized()
    model = nn.Linear(2, 2)
    assert wrap_ddp(model, "cpu") is model
    cleanup()  # nothing joined: nothing to leave


def test_each_rank_and_step_has_its_own_seed():
    seeds = {step_seed(0, s, r) for s in range(50) for r in range(4)}
    assert len(seeds) == 200 and step_seed(0, 3, 1) == step_seed(0, 3, 1) != step_seed(1, 3, 1)
    assert all(0 <= s < 2**63 for s in seeds)


if __name__ == "__main__":
    train_on_ranks(Path(sys.argv[1]))
