"""Subcommands of the index pages: ``report-index`` (a world's claims and outputs) and ``report-top-index``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def cmd_report_index(a: argparse.Namespace) -> None:
    from sb2bench.report.claims import check_claims
    from sb2bench.report.index import write_world_index

    spec = a.spec
    verdicts = check_claims(spec["claims"], spec["sources"], spec["sweeps"], spec.get("bootstrap") or {})
    write_world_index(spec["world"], verdicts, spec["outputs"], Path(a.out))
    for v in verdicts:
        print(f"[claim] {v.claim['id']}: {v.verdict} (difference {v.difference:+.4g} in [{v.low:+.4g}, "
              f"{v.high:+.4g}], detectable {v.detectable:.3g})", flush=True)


def cmd_report_top_index(a: argparse.Namespace) -> None:
    from sb2bench.report.index import write_top_index

    write_top_index(Path(a.reports), Path(a.out))


def cmd_report_benchmarks(a: argparse.Namespace) -> None:
    from sb2bench.report.benchmarks import write_benchmark_summary

    write_benchmark_summary(Path(a.bench_dir), Path(a.out_md), Path(a.out_csv), a.files,
                            log_dir=Path(a.log_dir) if a.log_dir else None)


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("report-index", help="a world's index: the paper's claims checked, then every report")
    s.add_argument("--spec", type=json.loads, required=True,
                   help='{"world", "claims", "sources": {system: metric source}, "sweeps": {merge: [{lambda, source}]}, '
                        '"bootstrap": evaluation.bootstrap, "outputs": [{path, title, section}]}')
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_report_index)

    s = sub.add_parser("report-top-index", help="reports/index.md: every world's index and benchmark report")
    s.add_argument("--reports", default="reports")
    s.add_argument("--out", default="reports/index.md")
    s.set_defaults(func=cmd_report_top_index)

    s = sub.add_parser("report-benchmarks", help="time and memory of every benchmarked job, summed per stage")
    s.add_argument("--bench-dir", required=True, help="Snakemake benchmark folder (benchmarks/<world>)")
    s.add_argument("--files", type=json.loads, default=None,
                   help="JSON list: only these TSVs (the current config's jobs), not every file in the folder")
    s.add_argument("--log-dir", default=None,
                   help="the jobs' logs (logs/<world>): CPU and memory of jobs that ran in a warm worker")
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-csv", required=True)
    s.set_defaults(func=cmd_report_benchmarks)
