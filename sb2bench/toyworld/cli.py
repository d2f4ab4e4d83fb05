"""``sb2bench toy-train``, ``hub-provenance``, ``hub-ship``, ``toy-eval-set``, ``toy-train-prompts``: the
command lines of the toy world (its hub of trained components and its prompt sets)."""
from __future__ import annotations

import argparse
from pathlib import Path

from sb2bench._infra.cli_args import json_arg


def cmd_toy_train(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import train_component

    path = train_component(a.component, Path(a.hub), a.params, Path(a.cache) if a.cache else None)
    print(f"wrote {path}")


def cmd_hub_provenance(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import write_provenance

    write_provenance(Path(a.hub), Path(a.out))


def cmd_hub_ship(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.hub import ship

    ship(Path(a.hub), Path(a.dest))


def cmd_toy_eval_set(a: argparse.Namespace) -> None:
    from sb2bench.toyworld.prompt_sets import write_eval_set

    write_eval_set(a.seed, a.n, Path(a.prompts), Path(a.reference))


def cmd_toy_train_prompts(a: argparse.Namespace) -> None:
    from sb2bench.data.prompts import write_prompts
    from sb2bench.toyworld.prompt_sets import training_prompts

    write_prompts(a.out, training_prompts(a.seed, a.n))


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("toy-train", help="train one component of the toy hub")
    s.add_argument("component")
    s.add_argument("--hub", required=True, help="hub folder (components read and written here)")
    s.add_argument("--params", type=json_arg, required=True, help="training parameters as JSON")
    s.add_argument("--cache", default=None, help="folder for cached renders")
    s.set_defaults(func=cmd_toy_train)

    s = sub.add_parser("hub-provenance", help="summarise how the toy hub was trained")
    s.add_argument("--hub", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_hub_provenance)

    s = sub.add_parser("hub-ship", help="copy a retrained toy hub into the package")
    s.add_argument("--hub", required=True)
    s.add_argument("--dest", required=True)
    s.set_defaults(func=cmd_hub_ship)

    s = sub.add_parser("toy-eval-set", help="write the toy evaluation prompts and reference images")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--reference", required=True)
    s.set_defaults(func=cmd_toy_eval_set)

    s = sub.add_parser("toy-train-prompts", help="write the first N prompts of the toy training stream")
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_toy_train_prompts)
