"""Data-parallel training on torchrun, kept out of the loop's way.

``torchrun --nproc-per-node N -m mlplab train ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Each joins one process group (gloo
on CPU, nccl on CUDA), draws the same seeded permutation and augmentation, and trains on its
share of every global batch (``train.batch_size`` stays the global batch, so the same flags
mean the same recipe at any world size); DistributedDataParallel averages the gradients.
Only rank 0 writes the run directory and logs. A rank that dies makes the others fail with
one clear error instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import TrainingError

__all__ = ["World", "lost_peer", "shard", "world", "world_size", "wrap"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    backend: str | None = None  # gloo or nccl; None for a single process

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (itself alone in one process)."""
        if self.size == 1:
            return values
        tensor = torch.tensor(
            values, dtype=torch.float64 if device.type != "mps" else torch.float32, device=device
        )
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, value: object) -> object:
        """Rank 0's ``value``, on every rank."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def world_size() -> int:
    """How many ranks torchrun started (1 without torchrun)."""
    return max(1, int(os.environ.get("WORLD_SIZE", "1")))


@contextlib.contextmanager
def world(device: torch.device, timeout_seconds: float) -> Iterator[World]:
    """The process group torchrun's environment describes, or a world of one."""
    size = world_size()
    if size == 1:
        yield World()
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "mps":
        raise TrainingError("data-parallel training runs on CPU (gloo) or CUDA (nccl), not on MPS")
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    try:
        dist.init_process_group(
            backend, rank=rank, world_size=size, timeout=datetime.timedelta(seconds=timeout_seconds)
        )
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(
            f"rank {rank} of {size} could not join the process group ({_first_line(exc)}); "
            "start every rank with torchrun, with the same MASTER_ADDR and MASTER_PORT"
        ) from None
    try:
        yield World(rank, size, backend)
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device, world: World) -> torch.nn.Module | None:
    """The model as the ranks train it together (DistributedDataParallel), or None alone."""
    if world.size == 1:
        return None
    ids = [device.index or 0] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def shard(batch: torch.Tensor, world: World) -> torch.Tensor:
    """This rank's contiguous share of a global batch (shares differ by at most one sample)."""
    return batch if world.size == 1 else torch.tensor_split(batch, world.size)[world.rank]


def lost_peer(exc: BaseException, world: World) -> TrainingError:
    """The one-line error for a collective that failed, most often because a rank died."""
    return TrainingError(
        f"rank {world.rank} of {world.size}: training stopped because the process group failed "
        f"({_first_line(exc)}); another rank has probably died or been killed: see its output"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
