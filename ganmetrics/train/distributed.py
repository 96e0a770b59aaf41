"""torch.distributed set-up for the trainer: one code path for one process and for torchrun.

Under ``torchrun`` the environment gives ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` (and the
rendezvous address); without it the trainer still runs as a process group of one (an in-memory
store), so DDP, all-reduces and barriers are the same code either way.  The backend is NCCL with
CUDA and gloo on the CPU.
"""

from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import NoReturn

import torch
import torch.distributed as dist

from .. import distributed as evaluation
from ..devices import check_device

#: Set once this process has created a process group: see :func:`exit_process`.
_created_group = False


@dataclass(frozen=True)
class World:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    #: True when this module created the process group (and so destroys it)
    owns_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str | None = None) -> World:
    """Join (or create) the process group; the device is ``cuda:LOCAL_RANK`` with CUDA, else the CPU."""
    launched = "WORLD_SIZE" in os.environ and "RANK" in os.environ
    rank = int(os.environ.get("RANK", 0)) if launched else 0
    local_rank = int(os.environ.get("LOCAL_RANK", rank)) if launched else 0
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = check_device(device)
    if target.type == "cuda":
        target = torch.device("cuda", local_rank if target.index is None else target.index)
        torch.cuda.set_device(target)
    backend = "nccl" if target.type == "cuda" else "gloo"
    owns = not dist.is_initialized()
    if owns:
        global _created_group
        _created_group = True
        timeout = datetime.timedelta(minutes=30)
        if launched:
            dist.init_process_group(backend, timeout=timeout)
        else:
            dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1, timeout=timeout)
    return World(dist.get_rank(), dist.get_world_size(), local_rank, target, owns)


def teardown(world: World) -> None:
    if world.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def exit_process(code: int) -> NoReturn:
    """End a process that ran the trainer: flush stdout and stderr, then ``os._exit(code)`` when it created a
    process group, else ``sys.exit(code)``.

    Why: torch keeps a gloo process group alive after ``destroy_process_group()`` once DDP (or ``new_group``) has
    used it — its worker threads keep running (measured with torch 2.13: 3 threads left).  Such a thread frees each
    finished collective, and with it tensors created in Python (``all_gather_object``'s buffers, reached through
    the barrier that followed them); that needs the GIL, and if the main thread has begun finalising the
    interpreter meanwhile, the thread exits inside C++ and the process aborts ("terminate called without an active
    exception", SIGABRT; seen in a core dump: ``ProcessGroupGloo::runLoop`` → ``~AsyncBarrierWork`` →
    ``~AsyncAllgatherWork`` → ``decref`` → ``take_gil`` → ``pthread_exit``).  Everything the trainer writes is
    complete and closed when it returns (checkpoints atomically), so skipping the interpreter's finalisation loses
    nothing and leaves no thread a finalising interpreter to touch.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if _created_group:
        os._exit(code)
    sys.exit(code)


def all_gather_objects(value, world: World) -> list:
    """``[value of rank 0, value of rank 1, ...]`` on every rank (picklable Python values)."""
    return evaluation.all_gather_objects(value, evaluation.Shard(world.rank, world.world_size))


def broadcast_buffers(module: torch.nn.Module, source: int = 0) -> None:
    """Copy rank ``source``'s buffers (BatchNorm statistics, StyleGAN's mean w, spectral-norm vectors) to every rank.

    Parameters stay equal under DDP by construction; buffers are updated from each rank's own batch,
    so without this the ranks (and their EMA copies) would drift apart.
    """
    for buffer in module.buffers():
        dist.broadcast(buffer, source)


def barrier() -> None:
    dist.barrier()
