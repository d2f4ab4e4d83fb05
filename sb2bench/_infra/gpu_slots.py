"""Local GPU assignment for Snakemake jobs: one lock file per GPU, held for the life of the job.

Snakemake counts a ``gpu`` resource but never says *which* GPU a job should use, so N parallel
GPU jobs would all land on GPU 0. ``run_on_gpus`` claims free slots with non-blocking ``flock`` on
``<lock_dir>/gpu<id>.lock``, sets ``CUDA_VISIBLE_DEVICES`` to them and ``exec``s the command with the
lock descriptors inherited: the kernel frees the slots when the job's process ends, however it ends
(exit, crash, kill -9), so there is no stale lock to clean up. A job that asks for no GPU, a machine
with none, or a scheduler that already chose (``CUDA_VISIBLE_DEVICES`` set, e.g. inside a SLURM
allocation) runs the command unchanged.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_GPUS = "SB2BENCH_GPUS"          # a count ("4") or the ids to hand out ("0,2,3"); overrides detection
ENV_LOCK_DIR = "SB2BENCH_GPU_LOCK_DIR"


class GpuSlotError(RuntimeError):
    pass


def visible_gpus() -> list[str]:
    """GPU ids this machine offers: $SB2BENCH_GPUS, else ``nvidia-smi -L``, else torch (slowest to import)."""
    raw = os.environ.get(ENV_GPUS, "").strip()
    if raw:
        if raw.isdigit():
            return [str(i) for i in range(int(raw))]
        ids = [g.strip() for g in raw.split(",") if g.strip()]
        if not ids:
            raise GpuSlotError(f"${ENV_GPUS}={raw!r}: give a count (4) or comma-separated GPU ids (0,2,3)")
        return ids
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0:
            return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def default_lock_dir() -> Path:
    """Per user and machine (locks must be seen by every workflow of this user on this host)."""
    return Path(os.environ.get(ENV_LOCK_DIR) or Path(tempfile.gettempdir()) / f"sb2bench-gpu-locks-{os.getuid()}")


def _try_claim(lock_dir: Path, ids: list[str], n: int) -> list[tuple[str, int]]:
    """Non-blocking: n locked (id, fd) pairs, or [] with nothing held."""
    held: list[tuple[str, int]] = []
    start = os.getpid() % len(ids)  # spread first attempts so waiting jobs do not all poll slot 0 first
    for gpu in ids[start:] + ids[:start]:
        fd = os.open(lock_dir / f"gpu{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        held.append((gpu, fd))
        if len(held) == n:
            return held
    for _, fd in held:  # all or nothing, so two jobs each holding half can never deadlock
        os.close(fd)
    return []


def claim(n: int, ids: list[str] | None = None, lock_dir: Path | None = None, poll: float = 1.0,
          timeout: float | None = None) -> list[tuple[str, int]]:
    """Block until ``n`` GPU slots are free; return their (id, lock fd). Locks last until the fds close."""
    ids = visible_gpus() if ids is None else ids
    if n > len(ids):
        raise GpuSlotError(f"a job asks for {n} GPU(s) but this machine offers {len(ids)} ({ids}); lower config "
                           f"key resources.gpus_per_job, or set ${ENV_GPUS} to the GPUs to use")
    lock_dir = lock_dir or default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    t0, told = time.monotonic(), False
    while True:
        held = _try_claim(lock_dir, ids, n)
        if held:
            for _, fd in held:  # who holds it, for humans: cat <lock_dir>/gpu*.lock
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return held
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise GpuSlotError(f"no {n} free GPU slot(s) of {ids} in {lock_dir} after {timeout:.0f} s")
        if not told:
            print(f"[gpu-run] waiting for {n} free GPU slot(s) of {ids} (locks in {lock_dir})", file=sys.stderr,
                  flush=True)
            told = True
        time.sleep(poll)


def assignment_needed(n: int) -> bool:
    """False when the command should run as it is (no GPU asked for, or a scheduler already chose)."""
    return n > 0 and not (os.environ.get("CUDA_VISIBLE_DEVICES") is not None and ENV_GPUS not in os.environ)


def run_on_gpus(cmd: list[str], n: int = 1, lock_dir: Path | None = None, poll: float = 1.0,
                timeout: float | None = None) -> None:
    """Replace this process by ``cmd`` on ``n`` claimed GPUs (never returns unless exec fails)."""
    if not cmd:
        raise GpuSlotError("no command given: sb2bench gpu-run [--gpus N] -- COMMAND ...")
    env = dict(os.environ)
    if assignment_needed(n):
        ids = visible_gpus()
        if ids:
            held = claim(n, ids, lock_dir, poll, timeout)
            for _, fd in held:
                os.set_inheritable(fd, True)  # the lock lives as long as the exec'd job
            env["CUDA_VISIBLE_DEVICES"] = ",".join(g for g, _ in held)
            print(f"[gpu-run] CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}", file=sys.stderr, flush=True)
    os.execvpe(cmd[0], cmd, env)
