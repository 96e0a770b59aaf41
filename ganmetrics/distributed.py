"""Evaluation over several processes (``torchrun``): which images each rank takes, and how results meet.

Under ``torchrun`` (or any initialised ``torch.distributed`` process group of more than one process)
the metric functions shard their images by rank and combine what the ranks computed, so that every
rank returns the same number, the number a single process computes.

Sharding (:class:`Shard`): images are dealt to the ranks in *units* of two consecutive images
(``2k, 2k+1``: MS-SSIM's pairs stay on one rank), round robin — unit ``u`` goes to rank
``u mod W``.  Rank ``r``'s ``j``-th image is therefore image

    ``g(j) = ((j div 2)·W + r)·2 + (j mod 2)``

of the whole set, a function of ``(r, W, j)`` alone: sources of unknown length (iterables) shard on
the fly, generators draw every latent from the seed and generate only their rank's, and per-image
randomness keyed by ``g`` (SWD's patch centres) does not depend on the world size.

Combining: feature statistics are merged with Chan et al.'s update in rank order
(:func:`all_reduce_stats`, the same arithmetic on every rank); per-image rows (KID's features,
IS logits, SWD descriptors, MS-SSIM values) are gathered and put back in the order of ``g``
(:func:`gather_rows`), so every metric sees the images in the single-process order.

The process group: an initialised default group is used as it is; a process started by
``torchrun`` (``WORLD_SIZE`` > 1 and ``MASTER_ADDR`` in the environment) without one gets it
initialised on first use (NCCL with CUDA, else gloo) and keeps it.  ``distributed=False`` on the
metric functions, or ``GANMETRICS_DISTRIBUTED=0``, makes a call use this process alone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .errors import InputError

#: consecutive images kept on one rank (MS-SSIM scores pairs 2k, 2k+1)
UNIT = 2
ENV_DISTRIBUTED = "GANMETRICS_DISTRIBUTED"


@dataclass(frozen=True)
class Shard:
    """Rank ``rank`` of ``world_size``: which images of a set this process takes (module docstring)."""

    rank: int = 0
    world_size: int = 1

    @property
    def active(self) -> bool:
        """True when the work is split over several processes."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def global_index(self, local: np.ndarray | int) -> np.ndarray:
        """Index in the whole set of this rank's ``local``-th image(s): ``((j div 2)·W + r)·2 + j mod 2``."""
        local = np.asarray(local, dtype=np.int64)
        return ((local // UNIT) * self.world_size + self.rank) * UNIT + local % UNIT

    def owns(self, index: np.ndarray | int) -> np.ndarray:
        """Whether image(s) ``index`` of the whole set belong to this rank."""
        return (np.asarray(index, dtype=np.int64) // UNIT) % self.world_size == self.rank

    def indices(self, total: int) -> np.ndarray:
        """This rank's images of a set of ``total``, ascending (``g(0), g(1), ...`` below ``total``)."""
        return np.flatnonzero(self.owns(np.arange(total, dtype=np.int64)))

    def count(self, total: int) -> int:
        """How many of ``total`` images this rank takes."""
        return len(self.indices(total))


LOCAL = Shard()


def _env_disabled() -> bool:
    return os.environ.get(ENV_DISTRIBUTED, "").strip().lower() in ("0", "false", "no", "off")


def _launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ and "MASTER_ADDR" in os.environ


def current_shard(distributed: bool | None = None) -> Shard:
    """This process's shard: :data:`LOCAL` unless a process group of several processes is (or, under
    ``torchrun``, can be) initialised.  ``distributed=False`` forces :data:`LOCAL`; ``True`` requires a group."""
    if distributed is False or (distributed is None and _env_disabled()) or not dist.is_available():
        return LOCAL
    if not dist.is_initialized() and _launched_by_torchrun():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if not dist.is_initialized():
        if distributed:
            raise InputError("distributed=True but no torch.distributed process group is initialised; launch with "
                             "torchrun or call torch.distributed.init_process_group first")
        return LOCAL
    return Shard(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """False on ranks other than 0 of an initialised process group (initialises nothing)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def local_device() -> torch.device | None:
    """``cuda:LOCAL_RANK`` for a process started by torchrun on a CUDA machine, else None."""
    if "LOCAL_RANK" in os.environ and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]) % torch.cuda.device_count())
    return None


def _comm_device() -> torch.device:
    """Where collective tensors must live: the current CUDA device for NCCL, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_tensor(x: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``x`` (same shape and dtype on all ranks), in rank order, on ``x``'s device."""
    device = _comm_device()
    local = x.to(device).contiguous()
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local)
    return [part.to(x.device) for part in parts]


def all_gather_counts(count: int) -> list[int]:
    """Every rank's ``count``, in rank order."""
    return [int(c) for c in all_gather_tensor(torch.tensor([count], dtype=torch.int64))]


def _gather_parts(rows: torch.Tensor, dst: int | None) -> list[torch.Tensor] | None:
    """Every rank's ``rows`` ``[n_r, ...]`` (any n_r), in rank order, on rank ``dst`` (None: on all ranks)."""
    counts = all_gather_counts(rows.shape[0])
    if max(counts) == 0:
        return [rows] * len(counts) if dst is None or dist.get_rank() == dst else None
    padded = rows.new_zeros((max(counts), *rows.shape[1:]))
    padded[: rows.shape[0]] = rows
    local = padded.to(_comm_device())
    if dst is None:
        parts: list[torch.Tensor] | None = [torch.empty_like(local) for _ in counts]
        dist.all_gather(parts, local)
    else:
        parts = [torch.empty_like(local) for _ in counts] if dist.get_rank() == dst else None
        dist.gather(local, parts, dst=dst)
        if parts is None:
            return None
    return [part[:count].to(rows.device) for count, part in zip(counts, parts, strict=True)]


def all_gather_concat(rows: torch.Tensor, shard: Shard) -> torch.Tensor:
    """All ranks' ``rows`` concatenated in rank order (for data whose order does not matter)."""
    return torch.cat(_gather_parts(rows, None)) if shard.active else rows


def gather_rows(rows: torch.Tensor, shard: Shard, *, dst: int | None = None) -> torch.Tensor | None:
    """All ranks' per-image ``rows`` ``[n_r, ...]`` as one tensor ``[N, ...]`` in the order of the whole set.

    Row ``j`` of rank ``r`` is image ``shard.global_index(j)``.  ``dst=None``: every rank gets the
    result; ``dst=k``: only rank ``k`` (the others get None), for large data such as SWD descriptors.
    """
    if not shard.active:
        return rows
    parts = _gather_parts(rows, dst)
    if parts is None:
        return None
    out = rows.new_empty((sum(len(part) for part in parts), *rows.shape[1:]))
    for rank, part in enumerate(parts):
        count = len(part)
        index = torch.from_numpy(Shard(rank, shard.world_size).global_index(np.arange(count)))
        if count and int(index.max()) >= len(out):
            raise RuntimeError(f"ranks hold {[len(p) for p in parts]} images, which is not a sharding of one set; "
                               "every rank must be given the same source")
        out[index.to(out.device)] = part
    return out


@contextlib.contextmanager
def failing_together(shard: Shard) -> Iterator[None]:
    """Run a rank-local block (a pass over the rank's images) so that a failure on any rank fails every rank.

    Without it, a rank that raised (an undecodable file in its share, say) would leave the others
    waiting in the next collective.  The failing rank re-raises its own error; the others raise an
    :class:`InputError` quoting it.
    """
    if not shard.active:
        yield
        return
    error: BaseException | None = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - re-raised below, after the other ranks have heard of it
        error = exc
    failures = all_gather_objects(None if error is None else f"{type(error).__name__}: {error}", shard)
    if error is not None:
        raise error
    for rank, failure in enumerate(failures):
        if failure is not None:
            raise InputError(f"rank {rank} of {shard.world_size} failed: {failure}")


def broadcast_object(value, shard: Shard, *, src: int = 0):
    """Rank ``src``'s ``value`` (any picklable object) on every rank."""
    if not shard.active:
        return value
    box = [value if shard.rank == src else None]
    dist.broadcast_object_list(box, src=src, device=_comm_device() if dist.get_backend() == "nccl" else None)
    return box[0]


def all_gather_objects(value, shard: Shard) -> list:
    """Every rank's ``value`` (picklable), in rank order."""
    if not shard.active:
        return [value]
    out = [None] * shard.world_size
    dist.all_gather_object(out, value)
    return out


def all_sum_int(value: int, shard: Shard) -> int:
    """Sum of ``value`` over the ranks."""
    return sum(all_gather_counts(value)) if shard.active else value
