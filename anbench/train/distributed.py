"""Distributed helpers over ``torch.distributed``: set-up from torchrun's environment,
rank-0 decisions broadcast to every rank, failure codes that reach every rank.

Nothing here relies on ranks having identical random streams (spec weakness 1): whatever
must agree (the work list, the item being trained) is decided on rank 0 and broadcast.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from typing import Any

# step status codes, reduced with MAX so the worst one wins on every rank
OK, DIVERGED, OOM, ERROR = 0, 1, 2, 3
TIMEOUT = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("WORLD_SIZE" in os.environ and "RANK" in os.environ)


def init_from_env(backend: str) -> DistInfo:
    """Join the process group torchrun describes (``env://``); a no-op for one process."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, init_method="env://", timeout=TIMEOUT)
    return info()


def info() -> DistInfo:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (pickled); identity for one process."""
    import torch.distributed as dist

    if not info().active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def worst(code: int, device=None) -> int:
    """The largest status code over all ranks (every rank must call this at the same point)."""
    import torch
    import torch.distributed as dist

    if not info().active:
        return code
    tensor = torch.tensor([code], dtype=torch.int32, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return int(tensor.item())


def sum_all(values: list[float], device=None) -> list[float]:
    """Element-wise sums over ranks (float64), e.g. (metric x samples, samples) pairs."""
    import torch
    import torch.distributed as dist

    if not info().active:
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def gather_all(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    import torch.distributed as dist

    if not info().active:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out
