"""``sb2bench sample`` (one shard of a system's images), ``sample-sets`` (several prompt sets, one model load)
and ``gather`` (shards into one folder, gather.py: imports no torch): the command lines of the sampling stage."""
from __future__ import annotations

import argparse
from pathlib import Path

from sb2bench._infra.cli_args import add_runtime_args, json_arg


def cmd_sample(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import read_prompts
    from sb2bench.sample.generate import SystemSpec, generate_shard

    spec = SystemSpec.from_dict(a.system)
    prompts = read_prompts(a.prompts)
    generate_shard(spec, prompts, Path(a.out), a.shard, a.n_shards, a.batch_size, a.threads, a.device, a.dtype)


def cmd_sample_sets(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import read_prompts
    from sb2bench.sample.generate import SystemSpec, generate_sets

    if len(a.names) != len(a.prompts):
        raise SystemExit(f"--names ({len(a.names)}) and --prompts ({len(a.prompts)}) must pair up")
    sets = {n: read_prompts(f) for n, f in zip(a.names, a.prompts)}
    generate_sets(SystemSpec.from_dict(a.system), sets, Path(a.out), a.batch_size, a.threads, a.device, a.dtype)


def cmd_gather(a: argparse.Namespace) -> None:
    from sb2bench.sample.gather import gather_shards

    gather_shards([Path(d) for d in a.shards], Path(a.out), a.expected)


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sample", help="generate one shard of images for a system")
    s.add_argument("--system", type=json_arg, required=True, help="system spec as JSON")
    s.add_argument("--prompts", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--shard", type=int, default=0)
    s.add_argument("--n-shards", type=int, default=1)
    add_runtime_args(s, batch_size=64, threads=None, device="cpu", dtype="float32")
    s.set_defaults(func=cmd_sample)

    s = sub.add_parser("sample-sets", help="generate several prompt sets (HPS styles) with one model load")
    s.add_argument("--system", type=json_arg, required=True, help="system spec as JSON")
    s.add_argument("--names", nargs="+", required=True)
    s.add_argument("--prompts", nargs="+", required=True, help="one prompt file per name, same order")
    s.add_argument("--out", required=True)
    add_runtime_args(s, batch_size=64, threads=None, device="cpu", dtype="float32")
    s.set_defaults(func=cmd_sample_sets)

    s = sub.add_parser("gather", help="merge shard folders into one image folder")
    s.add_argument("--shards", nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--expected", type=int, default=None)
    s.set_defaults(func=cmd_gather)
