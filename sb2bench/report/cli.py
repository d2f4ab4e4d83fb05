"""Subcommands of the reports: the index pages (``report-index``: a world's claims and outputs;
``report-top-index``), ``report-benchmarks``, and one per table or figure (``report-eval``, ``report-sweep``,
``report-table``, ``report-teacher``, ``report-trade-off``, ``report-loss-curves``, ``report-qualitative``)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from sb2bench._infra.cli_args import json_arg


def cmd_report_eval(a: argparse.Namespace) -> None:
    from sb2bench.report.tables import write_eval_table

    write_eval_table(a.systems["systems"], Path(a.out_md), Path(a.out_csv), a.title)


def cmd_report_sweep(a: argparse.Namespace) -> None:
    from sb2bench.report.sweeps import write_sweep

    write_sweep(a.sweep["label"], a.sweep["points"], Path(a.out_prefix))


def cmd_report_table(a: argparse.Namespace) -> None:
    from sb2bench.report.result_tables import write_result_table

    write_result_table(a.table, a.metrics, a.world, Path(a.out_dir))


def cmd_report_teacher(a: argparse.Namespace) -> None:
    from sb2bench.report.teacher import write_teacher_report

    write_teacher_report(a.systems["systems"], Path(a.prompts), Path(a.out_md), Path(a.out_png),
                         a.grid_prompts, a.title)


def cmd_report_trade_off(a: argparse.Namespace) -> None:
    from sb2bench.report.trade_off import write_trade_off

    write_trade_off(a.systems.get("curve", []), a.systems.get("points", []), Path(a.out_prefix), a.title)


def cmd_report_loss_curves(a: argparse.Namespace) -> None:
    from sb2bench.report.loss_curves import write_loss_curves

    print("panels:", ", ".join(write_loss_curves(a.runs["runs"], Path(a.out_prefix), a.title)))


def cmd_report_qualitative(a: argparse.Namespace) -> None:
    from sb2bench.report.qualitative import write_qualitative

    write_qualitative(a.systems["systems"], Path(a.prompts), a.indices, Path(a.out_prefix), a.title)


def cmd_report_index(a: argparse.Namespace) -> None:
    from sb2bench.report.claims import check_claims
    from sb2bench.report.index import write_world_index

    spec = a.spec
    verdicts = check_claims(spec["claims"], spec["sources"], spec["sweeps"], spec.get("bootstrap") or {})
    write_world_index(spec["world"], verdicts, spec["outputs"], Path(a.out), tier=spec.get("tier"),
                      note=spec.get("note") or "")
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


def _add_figure_cli(sub: argparse._SubParsersAction) -> None:
    """The subcommands of one table or figure each."""
    s = sub.add_parser("report-eval", help="table of every system's metrics")
    s.add_argument("--systems", type=json_arg, required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-csv", required=True)
    s.add_argument("--title", default="Evaluation")
    s.set_defaults(func=cmd_report_eval)

    s = sub.add_parser("report-sweep", help="metrics against lambda of one merge sweep (figure + table)")
    s.add_argument("--sweep", type=json_arg, required=True, help='{"label", "points": [{"lambda", "metrics"}]}')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .md, .csv")
    s.set_defaults(func=cmd_report_sweep)

    s = sub.add_parser("report-table", help="a config-declared table: ours beside the paper's numbers")
    s.add_argument("--table", type=json_arg, required=True, help="the table's config entry as JSON")
    s.add_argument("--metrics", type=json_arg, required=True, help='{"system": [metric files], ...}')
    s.add_argument("--world", required=True, choices=["toy", "real"])
    s.add_argument("--out-dir", required=True)
    s.set_defaults(func=cmd_report_table)

    s = sub.add_parser("report-teacher", help="write the teacher report (grid + accuracy table)")
    s.add_argument("--systems", type=json_arg, required=True)
    s.add_argument("--prompts", required=True)
    s.add_argument("--out-md", required=True)
    s.add_argument("--out-png", required=True)
    s.add_argument("--grid-prompts", type=int, default=8)
    s.add_argument("--title", default="Toy teacher")
    s.set_defaults(func=cmd_report_teacher)

    s = sub.add_parser("report-trade-off", help="FID against CLIP score: a curve of systems and labelled points")
    s.add_argument("--systems", type=json_arg, required=True,
                   help='{"curve": [{"name", "label", "metrics"}], "points": [...]} (metrics: a metrics.json)')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .csv")
    s.add_argument("--title", default="FID vs CLIP score")
    s.set_defaults(func=cmd_report_trade_off)

    s = sub.add_parser("report-loss-curves", help="training losses against step, one panel per logged loss")
    s.add_argument("--runs", type=json_arg, required=True,
                   help='{"runs": [{"name", "label", "log"}]} (log: a log.csv)')
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg")
    s.add_argument("--title", default="Training losses")
    s.set_defaults(func=cmd_report_loss_curves)

    s = sub.add_parser("report-qualitative", help="grid of the same prompts and seeds across systems")
    s.add_argument("--systems", type=json_arg, required=True,
                   help='{"systems": [{"name", "label", "images"}]} (images: folder of {index:06d}.png)')
    s.add_argument("--prompts", required=True, help="the prompt set the images were sampled on")
    s.add_argument("--indices", type=int, nargs="+", required=True, help="prompt indices (columns), in order")
    s.add_argument("--out-prefix", required=True, help="writes <prefix>.png, .svg, .md")
    s.add_argument("--title", default="Same prompt and seed per column")
    s.set_defaults(func=cmd_report_qualitative)


def add_cli(sub: argparse._SubParsersAction) -> None:
    _add_figure_cli(sub)
    s = sub.add_parser("report-index", help="a world's index: the paper's claims checked, then every report")
    s.add_argument("--spec", type=json.loads, required=True,
                   help='{"world", "tier", "note", "claims", "sources": {system: metric source}, "sweeps": {merge: [{lambda, source}]}, '
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
