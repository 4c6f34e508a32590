"""Training on several processes (one per GPU, or several CPU processes) with PyTorch's own
``DistributedDataParallel`` (DDP), launched by ``torchrun``.

The design, the simplest that keeps a run on N processes the same run as on one:

* ``data(step)`` returns the GLOBAL batch, deterministically in ``step``, in every process (an
  iterable of batches must yield the same batches in every process). The :class:`Trainer` keeps
  this rank's shard of it (:func:`shard`): rows ``[r * B / N, (r + 1) * B / N)`` of every tensor and
  list (captions); tuples and dicts are fields. A batch that cannot be cut by rows (Patch n' Pack
  rows hold several examples) brings its own ``batch.shard(rank, world_size)`` (the text-to-video
  batches of :mod:`sora_mini.train.video`). The data code is the same for 1 and N processes.
* DDP averages the gradients of the N shards. The update equals the one of a single process on the
  global batch (up to float rounding: the sums run in another order) when ``loss_fn`` is a mean
  over the rows of its shard and the shards are equal: ``B`` a multiple of ``N`` (:func:`shard`
  refuses otherwise). It does not when the loss is a sum (it is then N times smaller), a mean over
  a number of real tokens that differs between shards (weight it by the token count), or the model
  keeps batch statistics (BatchNorm sees one shard).
* Randomness inside ``loss_fn`` (diffusion noise and timesteps) must differ between ranks, or
  every shard draws the same noise: with N > 1 the trainer seeds each rank's torch RNG at every
  step from ``(TrainerConfig.seed, step, rank)``, which also makes a resumed run draw what an
  uninterrupted one would.
* The logged loss is the mean over ranks and ``tokens`` the sum (one ``all_reduce`` per step);
  other metrics are rank 0's. Rank 0 alone shows progress, writes the log and the checkpoints;
  every rank reads the checkpoint when it resumes (across machines, put it on a shared filesystem).
* ``loss_fn`` must call the model (its ``forward``, through the DDP wrapper), not another method of
  it, or the gradients are not averaged; attributes of the model are read from ``unwrap(model)``
  (:func:`sora_mini.train.device.unwrap`): the wrapper does not pass them on.
* Work that writes shared files before training (training an autoencoder, caching latents) runs on
  rank 0 first while the others wait, then on the others, which read what rank 0 wrote
  (:func:`rank_zero_first`); the wait is bounded by the group's timeout (torch's default: 10 min
  with nccl, 30 min with gloo).

A script::

    info = init_distributed()                      # rank 0 of 1 when not under torchrun
    model = wrap_ddp(build_model(), info.device)   # rank 0's initial weights go to every rank
    Trainer(model, loss_fn, data, config, device=info.device, ckpt_path=...).fit()
    cleanup()

or ``with process_group() as info: ...``, which leaves the group at the end if it joined it.

launched as ``torchrun --standalone --nproc_per_node 4 script.py`` (see docs/training.md).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistInfo",
    "barrier",
    "cleanup",
    "init_distributed",
    "min_over_ranks",
    "process_group",
    "rank_and_world",
    "rank_zero_first",
    "shard",
    "step_seed",
    "sum_over_ranks",
    "wrap_ddp",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank among ``world_size``, its rank on this machine, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``, ``MASTER_PORT``): backend nccl on CUDA (device ``cuda:LOCAL_RANK``), gloo on
    the CPU. Not under torchrun: nothing to join, rank 0 of 1.

    ``device``: ``"cpu"`` or ``"cuda"`` under torchrun (each rank takes ``cuda:LOCAL_RANK``); any
    device outside it (returned as it is); ``None`` picks CUDA when there is one.
    """
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if "RANK" not in os.environ:
        return DistInfo(0, 1, 0, torch.device(kind))
    kind = torch.device(kind).type
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"distributed training runs on 'cpu' or 'cuda', not {device!r}")
    rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if kind == "cuda":
        torch.cuda.set_device(local)  # before the group: nccl binds each rank to its GPU
    if not dist.is_initialized():
        dist.init_process_group("nccl" if kind == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local, torch.device(kind, local) if kind == "cuda" else torch.device(kind))


def cleanup() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def process_group(device: str | torch.device | None = None) -> Iterator[DistInfo]:
    """:func:`init_distributed` for the ``with`` block, :func:`cleanup` at its end when the block
    joined the group (a block inside another one leaves it to the outer one)."""
    joined = dist.is_available() and dist.is_initialized()
    info = init_distributed(device)
    try:
        yield info
    finally:
        if not joined:
            cleanup()


def barrier() -> None:
    """Wait until every rank gets here (nothing to wait for without a group of several processes)."""
    if rank_and_world()[1] > 1:
        dist.barrier()


def rank_zero_first(make: Callable):
    """``make()`` on rank 0, then, once it is done, on the other ranks: what rank 0 trains or
    encodes and caches on disk, the others load. One process: ``make()``."""
    rank = rank_and_world()[0]
    result = make() if rank == 0 else None
    barrier()
    return make() if rank != 0 else result


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group; ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap_ddp(model: nn.Module, device: str | torch.device) -> nn.Module:
    """``model`` on ``device``, inside ``DistributedDataParallel`` when a process group of more than
    one process is initialised (DDP then copies rank 0's weights to every rank); else the model."""
    device = torch.device(device)
    model = model.to(device)
    if rank_and_world()[1] == 1:
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


# ----------------------------------------------------------------------------------------------
def shard(batch, rank: int, world_size: int):
    """This rank's part of a global batch: rows ``[rank * n, (rank + 1) * n)``, ``n = B / world_size``,
    of every tensor (along dim 0; 0-d tensors pass as they are) and of every list or range (its items
    are the rows: captions, indices, samples of different sizes); dicts, tuples and namedtuples are
    fields, walked; anything else passes as it is. ``B`` must be a multiple of ``world_size``.
    A batch with a ``shard(rank, world_size)`` method is cut by it (with one process, not at all)."""
    if world_size == 1:
        return batch
    if torch.is_tensor(batch):
        return batch if batch.ndim == 0 else _rows(batch, rank, world_size)
    if callable(getattr(batch, "shard", None)):
        return batch.shard(rank, world_size)
    if isinstance(batch, (list, range)):
        return _rows(batch, rank, world_size)
    if isinstance(batch, dict):
        return type(batch)((k, shard(v, rank, world_size)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(shard(v, rank, world_size) for v in batch))
    if isinstance(batch, tuple):
        return tuple(shard(v, rank, world_size) for v in batch)
    return batch


def _rows(seq, rank: int, world_size: int):
    n, rest = divmod(len(seq), world_size)
    if rest:
        raise ValueError(f"a global batch of {len(seq)} rows does not split into {world_size} equal "
                         f"shards (the DDP update equals the 1-process one only for equal shards); use a "
                         f"batch size that is a multiple of {world_size}")
    return seq[rank * n:(rank + 1) * n]


# ----------------------------------------------------------------------------------------------
def sum_over_ranks(values: list[float], device: str | torch.device) -> list[float]:
    """``values`` summed element-wise over the ranks (one ``all_reduce``); as they are with one."""
    if rank_and_world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def min_over_ranks(value: int, device: str | torch.device) -> int:
    """The smallest of every rank's ``value`` (ranks agreeing on a number of steps)."""
    if rank_and_world()[1] == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def step_seed(seed: int, step: int, rank: int) -> int:
    """A 63-bit torch seed for ``rank`` at ``step``: independent streams per rank and per step."""
    digest = hashlib.blake2b(f"{seed}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
