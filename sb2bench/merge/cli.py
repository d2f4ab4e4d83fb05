"""``sb2bench merge``: the command line of the merge stage (interpolate.py)."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_merge(a: argparse.Namespace) -> None:
    from sb2bench.merge.interpolate import merge_sweep, merge_unets

    if len(a.lam) == 1 and a.out:
        merge_unets(a.a, a.b, a.lam[0], Path(a.out))
    elif a.out_sweep:
        merge_sweep(a.a, a.b, a.lam, Path(a.out_sweep))
    else:
        raise ValueError(f"--out takes one merged UNet but --lam gives {len(a.lam)} values; "
                         f"write a sweep with --out-sweep FOLDER (one lambda-<λ>/ folder per value)")


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("merge", help="theta = lambda A + (1 - lambda) B of two UNets (LoRA fused first), "
                                     "at one lambda or a whole sweep")
    s.add_argument("--a", required=True)
    s.add_argument("--b", required=True)
    s.add_argument("--lam", type=float, nargs="+", required=True, help="one λ in [0, 1], or a sweep's grid")
    out = s.add_mutually_exclusive_group(required=True)
    out.add_argument("--out", help="the merged UNet folder (one --lam)")
    out.add_argument("--out-sweep", help="sweep folder: one lambda-<λ>/ UNet folder per --lam, written in one job")
    s.set_defaults(func=cmd_merge)
