"""``sb2bench train --config run.json --out DIR``: the command line of :func:`sb2bench.train.run`."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_train(a: argparse.Namespace) -> None:
    from sb2bench.train import run

    inline = a.config.lstrip().startswith("{")
    path = Path(a.config)
    if not inline and not path.exists():
        raise FileNotFoundError(f"train config {path} does not exist")
    try:
        config = json.loads(a.config if inline else path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"train config {'(inline)' if inline else path} is not valid JSON: {exc}") from exc
    print(f"wrote {run(config, Path(a.out))}")


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand on an ``argparse`` subparsers object."""
    s = subparsers.add_parser("train", help="VSD-train a one-step student (SwiftBrush v2)")
    s.add_argument("--config", required=True, help="run config: a JSON file or inline JSON (keys: sb2bench.train.TrainConfig)")
    s.add_argument("--out", required=True, help="run folder (checkpoints, log, samples, final student/)")
    s.set_defaults(func=cmd_train)
    return s
