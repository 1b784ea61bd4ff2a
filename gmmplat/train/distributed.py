"""Data-parallel training: process group set-up, sharding and reductions.

The same training code runs in one process or under
``torchrun --nproc_per_node=P -- "$(which gmmplat)" train ...``: :func:`init_distributed` reads the variables
torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``) and joins a process group (``gloo`` on CPU, ``nccl`` on
CUDA).  Every process walks the same sequence of *global* batches (same seed);
process ``r`` takes items ``r, r+P, r+2P, ...`` of each global batch
(:func:`gmmplat.io.dataset.shard`).  The model is wrapped in
:class:`torch.nn.parallel.DistributedDataParallel`, which averages gradients;
each process scales its loss by ``P · n_local / n_global`` so that the averaged
gradient is the gradient of the mean over the global batch, as in one process.
Only rank 0 writes files.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

#: How long a process waits at a barrier or collective before the group gives up.
PROCESS_GROUP_TIMEOUT = datetime.timedelta(hours=24)

__all__ = ["DistContext", "init_distributed", "single_process"]


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1 = no process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum of ``t`` over processes (in place; returned)."""
        if self.distributed:
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def all_gather_objects(self, obj) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
        if not self.distributed:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def wrap(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """``model`` as DistributedDataParallel when distributed, else unchanged.

        Inputs are moved to the device by the trainer, so no ``device_ids`` are given.
        """
        if not self.distributed:
            return model
        return torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)


def single_process() -> DistContext:
    return DistContext()


def init_distributed(device: str | torch.device = "cpu") -> DistContext:
    """Join the process group described by torchrun's environment (or stay single).

    ``gloo`` for CPU devices, ``nccl`` for CUDA; on CUDA each process uses GPU
    ``LOCAL_RANK``.  Calling it when the group already exists reuses it.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    cuda = torch.device(device).type == "cuda"
    backend = "nccl" if cuda else "gloo"
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        # the other processes wait at a barrier while the main one refines the latent and runs the
        # refinement cycles (hours on a large CPU dataset): far past torch's default of 10–30 minutes
        dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=PROCESS_GROUP_TIMEOUT)
    return DistContext(rank=rank, world_size=world, local_rank=local, backend=dist.get_backend())


def shutdown(ctx: DistContext) -> None:
    """Leave the process group (if this process joined one).

    Unreachable objects that still hold the group (a finished run's DDP wrapper in a reference
    cycle) are collected first, while the group is alive; left to the interpreter's exit, their
    gloo threads could be torn down after it and abort the process.
    """
    if ctx.distributed and dist.is_initialized():
        import gc

        gc.collect()
        dist.destroy_process_group()
