"""Subcommands of the index pages: ``report-index`` (a world's claims and outputs) and ``report-top-index``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_report_index(a: argparse.Namespace) -> None:
    from sb2bench.report.claims import check_claims
    from sb2bench.report.index import write_world_index

    spec = a.spec
    verdicts = check_claims(spec["claims"], spec["sources"], spec["sweeps"])
    write_world_index(spec["world"], verdicts, spec["outputs"], Path(a.out))
    for v in verdicts:
        print(f"[claim] {v.claim['id']}: {v.verdict} (difference {v.difference:+.4g}, noise {v.noise:.3g})", flush=True)


def cmd_report_top_index(a: argparse.Namespace) -> None:
    from sb2bench.report.index import write_top_index

    write_top_index(Path(a.reports), Path(a.out))


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("report-index", help="a world's index: the paper's claims checked, then every report")
    s.add_argument("--spec", type=json.loads, required=True,
                   help='{"world", "claims", "sources": {system: metric source}, "sweeps": {merge: [{lambda, source}]}, '
                        '"outputs": [{path, title, section}]}')
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_report_index)

    s = sub.add_parser("report-top-index", help="reports/index.md: every world's index and benchmark report")
    s.add_argument("--reports", default="reports")
    s.add_argument("--out", default="reports/index.md")
    s.set_defaults(func=cmd_report_top_index)
