"""``sb2bench merge``: the command line of the merge stage (interpolate.py)."""
from __future__ import annotations

import argparse
from pathlib import Path


def cmd_merge(a: argparse.Namespace) -> None:
    from sb2bench.merge.interpolate import merge_unets

    merge_unets(a.a, a.b, a.lam, Path(a.out))


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("merge", help="theta = lambda A + (1 - lambda) B of two UNets (LoRA fused first)")
    s.add_argument("--a", required=True)
    s.add_argument("--b", required=True)
    s.add_argument("--lam", type=float, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_merge)
