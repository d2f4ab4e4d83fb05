"""``sb2bench gpu-run``: run a command on a free local GPU slot (gpu_slots.py)."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_gpu_run(a: argparse.Namespace) -> None:
    from sb2bench._infra.gpu_slots import GpuSlotError, run_on_gpus

    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    try:
        run_on_gpus(cmd, a.gpus, Path(a.lock_dir) if a.lock_dir else None, a.poll, a.timeout)
    except GpuSlotError as exc:
        raise ValueError(str(exc)) from exc


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("gpu-run", help="run a command on a free local GPU slot (CUDA_VISIBLE_DEVICES via lock files)")
    s.add_argument("--gpus", type=int, default=1, help="GPU slots the command needs (0: run it unchanged)")
    s.add_argument("--lock-dir", default=None, help="lock folder (default $SB2BENCH_GPU_LOCK_DIR or a per-user temp folder)")
    s.add_argument("--poll", type=float, default=1.0, help="seconds between attempts while every slot is taken")
    s.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (default: wait)")
    s.add_argument("cmd", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")
    s.set_defaults(func=cmd_gpu_run)
