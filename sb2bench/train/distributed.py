"""Data parallelism for the VSD loop: explicit collectives on the trainable parameters only.

Every rank holds a full replica (student, shared frozen/LoRA teacher, optimisers), draws its own
part of each global batch from its own random stream, and averages the gradients of the trainable
parameters after each backward, so every optimiser step applies the same update everywhere and the
replicas stay bit-identical. Why not DDP (``accelerator.prepare``): the frozen teacher and the LoRA
teacher are one UNet whose adapter is toggled, the student is run more than once per backward (the
regulariser, samples) and there are two optimisers with separate backward passes; DDP's hooks assume
one forward per backward and a fixed set of parameters that need gradients, and its bucketing would
only overlap communication we do not need to overlap. One bucketed all-reduce after each backward is
correct by construction and a few lines.

Every decision that changes control flow (a non-finite loss or gradient) is taken collectively, so
no rank can skip a collective another rank enters. With one process every function here is the
identity (or a no-op): the single-process path is exactly what it was.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

BUCKET_BYTES = 64 * 2**20  # all-reduce in chunks: bounded extra memory even for a full SD UNet


def size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def rank_seed(seed: int, rank_: int) -> int:
    """Seed of rank ``rank_``'s stream: rank 0 keeps ``seed`` (so it draws what a one-process run
    draws), the others get a hash of (seed, rank), independent of every other (seed, rank)."""
    if rank_ == 0:
        return seed
    return int.from_bytes(hashlib.sha256(f"sb2bench-rank:{seed}:{rank_}".encode()).digest()[:8], "little") >> 1


def _device() -> torch.device:
    """Where small collective tensors live: NCCL needs CUDA tensors, gloo takes CPU ones."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def barrier() -> None:
    if size() > 1:
        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (filling caches on disk), then the others, which find them."""
    if not is_main():
        barrier()
    yield
    if is_main():
        barrier()


def _buckets(tensors: list[torch.Tensor], limit: int) -> Iterator[list[torch.Tensor]]:
    bucket, used = [], 0
    for t in tensors:
        if bucket and (used + t.numel() * t.element_size() > limit or t.dtype != bucket[0].dtype
                       or t.device != bucket[0].device):
            yield bucket
            bucket, used = [], 0
        bucket.append(t)
        used += t.numel() * t.element_size()
    if bucket:
        yield bucket


def _all_reduce_(tensors: list[torch.Tensor], op=dist.ReduceOp.SUM) -> None:
    """In-place all-reduce of a list of tensors, flattened into buckets (few collectives, bounded memory)."""
    for bucket in _buckets(tensors, BUCKET_BYTES):
        flat = torch.cat([t.reshape(-1) for t in bucket])
        dist.all_reduce(flat, op=op)
        offset = 0
        for t in bucket:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


@torch.no_grad()
def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Mean of each trainable parameter's gradient over the ranks (after backward, before clipping).

    Which parameters have a gradient depends only on the config (every rank runs the same graph),
    so every rank reduces the same list in the same order."""
    n = size()
    if n == 1:
        return
    grads = [q.grad for q in params if q.grad is not None]
    _all_reduce_(grads)
    for g in grads:
        g.div_(n)


@torch.no_grad()
def broadcast_(params: Iterable[torch.Tensor]) -> None:
    """Copy rank 0's values into every rank's tensors (identical replicas at the start)."""
    if size() == 1:
        return
    for bucket in _buckets(list(params), BUCKET_BYTES):
        flat = torch.cat([t.detach().reshape(-1) for t in bucket])
        dist.broadcast(flat, src=0)
        offset = 0
        for t in bucket:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()


@torch.no_grad()
def all_finite(value: torch.Tensor) -> bool:
    """True when ``value`` is finite on every rank (one decision, the same everywhere)."""
    ok = bool(torch.isfinite(value).all())
    if size() == 1:
        return ok
    flag = torch.tensor([1.0 if ok else 0.0], device=_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return flag.item() == 1.0


def mean_logs(logs: dict) -> dict:
    """The log values averaged over the ranks (floats only: counters and step numbers are shared)."""
    if size() == 1:
        return logs
    keys = sorted(k for k, v in logs.items() if isinstance(v, float))
    values = torch.tensor([logs[k] for k in keys], dtype=torch.float64, device=_device())
    dist.all_reduce(values)
    return {**logs, **{k: v / size() for k, v in zip(keys, values.tolist())}}


def gather(t: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's copy of ``t`` (same shape and dtype everywhere), on the CPU, in rank order."""
    if size() == 1:
        return [t.cpu()]
    local = t.to(_device())
    out = [torch.empty_like(local) for _ in range(size())]
    dist.all_gather(out, local)
    return [o.cpu() for o in out]


@torch.no_grad()
def replicas_identical(params: Iterable[torch.Tensor]) -> bool:
    """Bitwise check that every rank holds the same values: the elementwise max over ranks equals
    the min (exact, no hashing; a NaN anywhere also fails)."""
    if size() == 1:
        return True
    params = [q.detach() for q in params]
    same = True
    for bucket in _buckets(params, BUCKET_BYTES):
        hi = torch.cat([t.reshape(-1) for t in bucket])
        lo = hi.clone()
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        same = same and torch.equal(hi, lo)  # hi and lo are the same on every rank: so is the answer
    return same


def shutdown() -> None:
    """Leave the process group (the launched process is about to exit)."""
    if size() > 1:
        dist.barrier()
        dist.destroy_process_group()
