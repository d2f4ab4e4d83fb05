"""``sb2bench train --config run.json --out DIR [--processes N]``: the command line of
:func:`sb2bench.train.run` (N > 1: data parallel under ``accelerate launch``, see launch.py);
``sb2bench train-warmup --config run.json --out DIR``: its LoRA-teacher warm-up alone, for runs to share
(``lora_warmup_from``, warmup.py); ``sb2bench train-reg-pairs``: the regulariser's (noise, teacher latent,
prompt) pairs folder."""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from sb2bench._infra.cli_args import add_runtime_args
from sb2bench.train.config import TrainConfig  # torch-free


def _read_config(text: str) -> TrainConfig:
    """A run config from a JSON file or inline JSON, validated once here (not in every launched process)."""
    inline = text.lstrip().startswith("{")
    path = Path(text)
    if not inline and not path.exists():
        raise FileNotFoundError(f"train config {path} does not exist")
    try:
        config = json.loads(text if inline else path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"train config {'(inline)' if inline else path} is not valid JSON: {exc}") from exc
    return TrainConfig.from_dict(config)


def cmd_train(a: argparse.Namespace) -> None:
    config = _read_config(a.config)
    config.accumulation(a.processes)  # a global batch this process count cannot divide: refused before launch
    if a.processes > 1:
        from sb2bench.train.warmup import check_processes

        check_processes(config, a.processes)  # before launching N processes
    if a.processes > 1 and "LOCAL_RANK" not in os.environ:  # not when already launched: no nested launches
        from sb2bench.train.launch import exec_train

        exec_train(a.processes, a.config, a.out, a.cpu)  # the launched processes run this without --processes
    if a.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks for a GPU
    from sb2bench.train import distributed, run

    final = run(config, Path(a.out))
    if distributed.is_main():
        print(f"wrote {final}")
    distributed.shutdown()


def cmd_train_warmup(a: argparse.Namespace) -> None:
    config = _read_config(a.config)
    if a.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    from sb2bench.train.trainer import train_warmup

    print(f"wrote {train_warmup(config, Path(a.out))}")


def cmd_reg_pairs(a: argparse.Namespace) -> None:
    from sb2bench.train.regularisation import build_pairs

    out = build_pairs(a.teacher, a.prompts, a.n, a.out, steps=a.steps, cfg=a.cfg, seed=a.seed,
                      batch_size=a.batch_size, shard_size=a.shard_size, device=a.device, dtype=a.dtype)
    print(f"wrote {out}")


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``train`` and ``train-reg-pairs`` subcommands on an ``argparse`` subparsers object."""
    r = subparsers.add_parser("train-reg-pairs", help="teacher ODE pairs for the image regulariser (SBv2 Ours*, DMD)")
    r.add_argument("--teacher", required=True, help="zoo spec of the teacher pipeline")
    r.add_argument("--prompts", required=True, help="JSONL prompt file (SBv2: LAION-Aesthetic captions)")
    r.add_argument("--n", type=int, default=None, help="pairs from the first N prompts (SBv2: 200K; default all)")
    r.add_argument("--out", required=True, help="pairs folder (train config key reg_pairs)")
    r.add_argument("--steps", type=int, default=25, help="DDIM steps of the teacher")
    r.add_argument("--cfg", type=float, default=4.5, help="teacher CFG scale (SBv2's teacher setting)")
    r.add_argument("--seed", type=int, default=0, help="noise of pair i comes from (seed, i)")
    add_runtime_args(r, batch_size=16)
    r.add_argument("--shard-size", type=int, default=1024, help="pairs per shard file (the unit of resumption)")
    add_runtime_args(r, device="auto", dtype="float32")
    r.set_defaults(func=cmd_reg_pairs)
    s = subparsers.add_parser("train", help="VSD-train a one-step student (SwiftBrush v2)")
    s.add_argument("--config", required=True, help="run config: a JSON file or inline JSON (keys: sb2bench.train.TrainConfig)")
    s.add_argument("--out", required=True, help="run folder (checkpoints, log, samples, final student/)")
    s.add_argument("--processes", type=int, default=1,
                   help="data-parallel processes, one per GPU (> 1: re-run under accelerate launch; "
                        "batch_size is per process)")
    s.add_argument("--cpu", action="store_true", help="hide the GPUs (a CPU run; with --processes: gloo)")
    s.set_defaults(func=cmd_train)
    w = subparsers.add_parser("train-warmup", help="the LoRA-teacher warm-up of a run config alone, for runs to share")
    w.add_argument("--config", required=True, help="run config: a JSON file or inline JSON (its lora_warmup_steps)")
    w.add_argument("--out", required=True, help="warm-up folder (train config key lora_warmup_from of the runs)")
    w.add_argument("--cpu", action="store_true", help="hide the GPUs (a CPU warm-up, for CPU runs)")
    w.set_defaults(func=cmd_train_warmup)
    return s
