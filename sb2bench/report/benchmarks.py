"""Per-job time and memory from Snakemake's ``benchmark:`` files, summed per stage: where the DAG's wall
time goes (the TSVs themselves stay under benchmarks/<world>/; this report puts them in the HTML report)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sb2bench.atomic import atomic_file


def read_benchmarks(bench_dir: Path, files: list[str] | None = None) -> pd.DataFrame:
    """One row per job: its TSV path below ``bench_dir`` (the stage is the first folder), seconds, peak RSS.
    ``files``: only these TSVs (a job of the current config that wrote none is skipped)."""
    rows = []
    chosen = sorted(Path(bench_dir).rglob("*.tsv")) if files is None else [Path(f) for f in files if Path(f).is_file()]
    for tsv in chosen:
        df = pd.read_csv(tsv, sep="\t")
        if df.empty:
            continue
        rel = tsv.relative_to(bench_dir).with_suffix("").as_posix()
        last = df.iloc[-1]  # a job benchmarked with repeats writes one row per repeat
        rows.append({"job": rel, "stage": rel.split("/", 1)[0], "seconds": float(last["s"]),
                     "max_rss_mb": float(last["max_rss"]) if pd.notna(last.get("max_rss")) else None,
                     "cpu_seconds": float(last["cpu_time"]) if pd.notna(last.get("cpu_time")) else None})
    return pd.DataFrame(rows, columns=["job", "stage", "seconds", "max_rss_mb", "cpu_seconds"])


def write_benchmark_summary(bench_dir: Path, out_md: Path, out_csv: Path, files: list[str] | None = None,
                            top: int = 15) -> pd.DataFrame:
    jobs = read_benchmarks(bench_dir, files)
    with atomic_file(out_csv) as f:
        jobs.to_csv(f, index=False)
    lines = [f"# Where the time goes: Snakemake benchmarks of `{bench_dir}`", "",
             "Wall seconds and peak resident memory of every job with a `benchmark:` directive, as Snakemake "
             "measured them (jobs that ran at the same time overlap, so the sum exceeds the DAG's wall time). "
             f"Every job: `{Path(out_csv).name}`.", ""]
    if jobs.empty:
        lines.append("No benchmark files yet.")
    else:
        stages = jobs.groupby("stage").agg(jobs=("job", "count"), seconds=("seconds", "sum"),
                                           max_rss_mb=("max_rss_mb", "max")).sort_values("seconds", ascending=False)
        lines += ["| stage | jobs | wall seconds (sum) | peak RSS (MB) |", "|---|---:|---:|---:|"]
        lines += [f"| {name} | {int(r.jobs)} | {r.seconds:.0f} | {r.max_rss_mb:.0f} |" for name, r in stages.iterrows()]
        lines += [f"| all | {len(jobs)} | {jobs['seconds'].sum():.0f} | {jobs['max_rss_mb'].max():.0f} |", "",
                  f"The {min(top, len(jobs))} longest jobs:", "", "| job | wall seconds | peak RSS (MB) |",
                  "|---|---:|---:|"]
        for _, r in jobs.sort_values("seconds", ascending=False).head(top).iterrows():
            lines.append(f"| {r['job']} | {r['seconds']:.0f} | {r['max_rss_mb']:.0f} |")
    with atomic_file(out_md) as f:
        f.write("\n".join(lines) + "\n")
    return jobs
