"""``torchrun`` DDP: detect the launcher's environment, set up the process group, rank helpers."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistInfo:
    """Rank of this process, number of processes and local GPU index (all 0/1/0 without torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed() -> DistInfo:
    """Join the process group when launched by ``torchrun`` (WORLD_SIZE > 1); nccl on GPU, gloo on CPU."""
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world=world, local_rank=local)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def broadcast_flag(info: DistInfo, flag: bool, device) -> bool:
    """Rank 0's boolean, sent to every rank (so all ranks stop early together)."""
    return bool(broadcast_value(info, float(flag), device))


def broadcast_value(info: DistInfo, value: float, device) -> float:
    """Rank 0's number, sent to every rank (so all ranks follow one time-budget plan and clock)."""
    if not info.enabled:
        return float(value)
    import torch
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())
