"""Per-job time and memory from Snakemake's ``benchmark:`` files, summed per stage: where the DAG's wall
time goes (the TSVs themselves stay under benchmarks/<world>/; this report puts them in the HTML report).

A job run in a warm worker (sb2bench/_infra/warm.py) is invisible to Snakemake's memory and CPU measurement,
which sees only the thin client; its CPU seconds and peak RSS come from the worker's own ``wait4``
figures, which the client wrote to the job's log (the log has the TSV's path under logs/<world>/)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sb2bench._infra.atomic import atomic_file
from sb2bench._infra.rusage import RUSAGE_TAG


COLUMNS = ["job", "stage", "seconds", "max_rss_mb", "cpu_seconds", "measured_by"]


def warm_rusage(log: Path) -> dict | None:
    """The warm worker's {cpu_seconds, max_rss_mb} from a job log, or None for a job that ran cold."""
    if not log.is_file():
        return None
    found = None
    with open(log, errors="replace") as f:
        for line in f:
            if line.startswith(RUSAGE_TAG):
                found = json.loads(line[len(RUSAGE_TAG):])
    return found


def read_benchmarks(bench_dir: Path, files: list[str] | None = None, log_dir: Path | None = None) -> pd.DataFrame:
    """One row per job: its TSV path below ``bench_dir`` (the stage is the first folder), seconds, peak RSS.
    ``files``: only these TSVs (a job of the current config that wrote none is skipped). ``log_dir``: where
    the jobs' logs are, to read the CPU and memory of jobs that ran in a warm worker."""
    rows = []
    chosen = sorted(Path(bench_dir).rglob("*.tsv")) if files is None else [Path(f) for f in files if Path(f).is_file()]
    for tsv in chosen:
        df = pd.read_csv(tsv, sep="\t")
        if df.empty:
            continue
        rel = tsv.relative_to(bench_dir).with_suffix("").as_posix()
        last = df.iloc[-1]  # a job benchmarked with repeats writes one row per repeat
        row = {"job": rel, "stage": rel.split("/", 1)[0], "seconds": float(last["s"]),
               "max_rss_mb": float(last["max_rss"]) if pd.notna(last.get("max_rss")) else None,
               "cpu_seconds": float(last["cpu_time"]) if pd.notna(last.get("cpu_time")) else None,
               "measured_by": "snakemake"}
        worker = warm_rusage(Path(log_dir) / f"{rel}.log") if log_dir is not None else None
        if worker is not None:
            row.update(max_rss_mb=worker["max_rss_mb"], cpu_seconds=worker["cpu_seconds"], measured_by="warm worker")
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def write_benchmark_summary(bench_dir: Path, out_md: Path, out_csv: Path, files: list[str] | None = None,
                            top: int = 15, log_dir: Path | None = None) -> pd.DataFrame:
    jobs = read_benchmarks(bench_dir, files, log_dir)
    with atomic_file(out_csv) as f:
        jobs.to_csv(f, index=False)
    lines = [f"# Where the time goes: Snakemake benchmarks of `{bench_dir}`", "",
             "Wall seconds and peak resident memory of every job with a `benchmark:` directive, as Snakemake "
             "measured them (jobs that ran at the same time overlap, so the sum exceeds the DAG's wall time). "
             f"Every job: `{Path(out_csv).name}`. Jobs run in a warm worker (`resources.warm_interpreter`) "
             "spent no time importing; their CPU and memory are the worker's own (wait4), read from their logs: "
             "the peak RSS includes the preloaded torch, diffusers and transformers.", ""]
    if jobs.empty:
        lines.append("No benchmark files yet.")
    else:
        stages = jobs.groupby("stage").agg(jobs=("job", "count"), seconds=("seconds", "sum"),
                                           cpu_seconds=("cpu_seconds", "sum"),
                                           max_rss_mb=("max_rss_mb", "max")).sort_values("seconds", ascending=False)
        lines += ["| stage | jobs | wall seconds (sum) | CPU seconds (sum) | peak RSS (MB) |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {int(r.jobs)} | {r.seconds:.0f} | {r.cpu_seconds:.0f} | {r.max_rss_mb:.0f} |"
                  for name, r in stages.iterrows()]
        lines += [f"| all | {len(jobs)} | {jobs['seconds'].sum():.0f} | {jobs['cpu_seconds'].sum():.0f} | "
                  f"{jobs['max_rss_mb'].max():.0f} |", "",
                  f"The {min(top, len(jobs))} longest jobs:", "", "| job | wall seconds | peak RSS (MB) |",
                  "|---|---:|---:|"]
        for _, r in jobs.sort_values("seconds", ascending=False).head(top).iterrows():
            lines.append(f"| {r['job']} | {r['seconds']:.0f} | {r['max_rss_mb']:.0f} |")
    with atomic_file(out_md) as f:
        f.write("\n".join(lines) + "\n")
    return jobs
