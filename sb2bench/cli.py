"""``sb2bench <stage>``: the command every Snakemake rule calls."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    """Each stage package registers its own subcommands (``<stage>/cli.py: add_cli(sub)``), in the order the
    stages run; those modules import only argparse-level code, so the parser builds fast."""
    from sb2bench._infra import cli as infra_cli
    from sb2bench.data import cli as data_cli
    from sb2bench.evaluate import cli as evaluate_cli
    from sb2bench.merge import cli as merge_cli
    from sb2bench.plan import cli as plan_cli
    from sb2bench.report import cli as report_cli
    from sb2bench.sample import cli as sample_cli
    from sb2bench.toyworld import cli as toyworld_cli
    from sb2bench.train import cli as train_cli

    p = argparse.ArgumentParser(prog="sb2bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    for stage in (plan_cli, data_cli, toyworld_cli, sample_cli, train_cli, merge_cli, evaluate_cli, report_cli,
                  infra_cli):
        stage.add_cli(sub)
    return p


def main(argv: list[str] | None = None, warm: bool = True) -> int:
    """``warm``: hand the command to a warm interpreter when $SB2BENCH_WARM=1 (sb2bench/_infra/warm.py)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if warm:
        from sb2bench._infra import warm as warm_interpreter

        if warm_interpreter.wanted(argv):
            code = warm_interpreter.run_in_server(argv, entry="sb2bench.cli:run")
            if code is not None:
                return code
    return run(argv)


def run(argv: list[str]) -> int:
    """Parse and run one command in this process (a warm worker calls this directly)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"sb2bench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
