"""torch.distributed set-up for ``torchrun`` launches (gloo on CPU, nccl on GPU).

Each optimizer step uses one *global* batch; process ``r`` of ``W`` evaluates
structures ``r, r + W, r + 2W, ...`` of it (the sharding of
``torch.utils.data.DistributedSampler``). Losses are normalised by counts of the
global batch, so the sum of the local losses is the global-batch loss; the
model is wrapped in ``DistributedDataParallel``, which averages gradients, and
the trainer back-propagates ``W`` times its local loss, so the update equals
that of the global batch on one process.
"""

from __future__ import annotations

import dataclasses
import gc
import os
from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """Rank, world size and device of this process."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """True on the process that writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process takes part."""
        return self.world_size > 1


def pick_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA (this process's local GPU) when available, else CPU."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(requested)


def setup(requested_device: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world == 1:
        return DistInfo(device=device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def teardown(info: DistInfo, wait_for_peers: bool = True) -> None:
    """Leave the process group if this process joined one.

    Garbage left in reference cycles (a ``DistributedDataParallel`` reducer holds
    the group's pending work) is collected first, while the interpreter is fully
    alive: gloo work freed during interpreter shutdown can abort the process.
    With ``wait_for_peers`` (a clean finish) every process waits at a barrier,
    so no process closes its connections while a peer, e.g. rank 0 writing the
    summary, still holds the group. After an error the barrier is skipped: the
    peers may be inside another collective, and ``torchrun`` stops them.
    """
    if not (info.enabled and dist.is_initialized()):
        return
    gc.collect()
    if wait_for_peers:
        dist.barrier()
    dist.destroy_process_group()


def shard(items: Sequence[T], info: DistInfo) -> list[T]:
    """Part of a global batch for this process (strided, like DistributedSampler)."""
    return list(items[info.rank :: info.world_size])


def all_reduce_sum(tensor: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum of ``tensor`` over processes (a copy; identity on one process)."""
    out = tensor.detach().clone()
    if info.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def wrap(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``DistributedDataParallel(model)`` when several processes take part, else ``model``.

    DDP all-reduces (averages) parameter gradients during ``backward``. Forces
    are gradients with respect to positions taken inside the model's forward
    pass; they never touch parameter ``.grad`` and so do not trigger DDP's hooks.
    """
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)
