"""More than one process: ``torch.distributed`` as ``torchrun`` launches it. No scheduler of our own.

``torchrun --nproc-per-node N -m edgekd compress ...`` (or ``train-teacher``) sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous; :func:`setup` joins the group with NCCL on
GPUs and gloo on CPUs, and a timeout, so that a rank that dies makes the others stop with a
clear message instead of waiting forever. A single process needs none of this: :func:`current`
then says ``world == 1`` and every helper is a no-op.

What is shared how:
- the global batch (``batch_size``) is split evenly over the ranks; each rank takes its slice of
  the same per-epoch permutation, so one process and N processes see the same global batches;
- gradients are averaged by DistributedDataParallel; BatchNorm normalises each rank's slice
  (SyncBatchNorm with ``sync_bn`` on GPUs: PyTorch supports it only there); the precise-BN pass
  runs on rank 0 and its statistics are broadcast;
- validation and test are split over the ranks and their correct counts summed: scored once;
- rank 0 writes checkpoints (atomically) and reports; every rank resumes from the same checkpoint
  (a shared filesystem, as with any torchrun job that resumes);
- IG maps: each rank computes its own chunks of the one cache (``precompute_ig(rank, world)``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from edgekd.errors import EdgekdError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def describe(self) -> dict:
        return {"world": self.world, "backend": self.backend, "rank": self.rank}


def current() -> Dist:
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return Dist()
    return Dist(torch.distributed.get_rank(), torch.distributed.get_world_size(),
                int(os.environ.get("LOCAL_RANK", 0)), torch.distributed.get_backend())


def launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_request: str = "auto", timeout_s: float = 600.0) -> Dist:
    """Join the process group torchrun describes (once); NCCL with a GPU per rank, else gloo."""
    if not launched():
        return Dist()
    if torch.distributed.is_initialized():
        return current()
    use_cuda = device_request != "cpu" and torch.cuda.is_available()
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    try:
        torch.distributed.init_process_group(backend, timeout=timedelta(seconds=timeout_s))
    except Exception as exc:  # noqa: BLE001 - rendezvous failures come in many types
        raise EdgekdError(f"cannot join the {backend} process group ({type(exc).__name__}: {str(exc)[:160]})",
                          "check the torchrun --rdzv-endpoint / MASTER_ADDR and that every node can reach it") from None
    return current()


def device_for(d: Dist, requested: str):
    """This rank's device: its own GPU under NCCL, the CPU under gloo."""
    if d.backend == "nccl":
        return torch.device("cuda", d.local_rank)
    if d.active:
        return torch.device("cpu")
    return None


def _collective(fn, what: str):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - a peer died or timed out: gloo/nccl raise RuntimeError variants
        raise EdgekdError(f"another rank stopped while {what} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                          "see that rank's log; run the same command again to resume from the last checkpoint") from None


def barrier(d: Dist, what: str = "waiting for the other ranks") -> None:
    if d.active:
        _collective(torch.distributed.barrier, what)


def all_sum(d: Dist, values: list[float], what: str = "summing metrics") -> list[float]:
    if not d.active:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    _collective(lambda: torch.distributed.all_reduce(t), what)
    return t.tolist()


def broadcast_buffers(d: Dist, module: torch.nn.Module, src: int = 0) -> None:
    """Rank ``src``'s BatchNorm statistics (and every other buffer) to all ranks."""
    if not d.active:
        return
    for b in module.buffers():
        _collective(lambda b=b: torch.distributed.broadcast(b, src), "sharing BatchNorm statistics")


def broadcast_object(d: Dist, obj, src: int = 0):
    if not d.active:
        return obj
    box = [obj if d.rank == src else None]
    _collective(lambda: torch.distributed.broadcast_object_list(box, src), "sharing a result")
    return box[0]
