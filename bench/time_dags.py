"""Wall time of the default and smoke DAGs from a clean working directory.

Writes reports/bench/dag_times.json and .md (machine, config, wall seconds per run), the figures
behind the targets in docs/workflow.md (default DAG <= 45 min, smoke DAG <= 3 min on 2 CPU cores).

    python bench/time_dags.py [--configs default smoke] [--cores 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_dag(config: str, cores: int, workdir: str | None = None) -> dict:
    """Run one DAG from scratch in ``workdir`` (a fresh temporary folder when None) and time it."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or tmp
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "-s", str(ROOT / "Snakefile"),
                               "--directory", work, "--configfile", str(ROOT / "config" / f"{config}.yaml")],
                              capture_output=True, text=True, env=env)
        wall = time.time() - t0
        found = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
        jobs = int(found.group(1)) if found else None
        bench = Path(work) / "reports" / "toy" / "benchmarks.md"  # per-stage sums of the jobs' own timings
        stages = bench.read_text().split("\n\n", 2)[2].split("\n\n")[0] if bench.exists() else None
    if proc.returncode != 0:
        raise RuntimeError(f"{config} DAG failed:\n{proc.stderr[-3000:]}")
    from sb2bench.plan.config import load_config

    warm = load_config(ROOT / "config" / f"{config}.yaml")["resources"]["warm_interpreter"]
    return {"config": f"config/{config}.yaml", "cores": cores, "wall_seconds": round(wall, 1), "jobs": jobs,
            "warm_interpreter": warm, "stages_md": stages}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["default", "smoke"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "dag_times"))
    ap.add_argument("--default-in-repo", action="store_true",
                    help="run the default DAG in the repository itself, so its reports land in reports/ "
                         "(its results/ must not exist yet)")
    args = ap.parse_args()
    import torch

    runs = []
    for c in args.configs:
        in_repo = args.default_in_repo and c == "default"
        stale = [d for d in ("data", "samples", "metrics") if (ROOT / "results" / "toy" / d).exists()]
        if in_repo and stale:
            raise SystemExit(f"results/toy/{{{','.join(stale)}}} exist: remove them so the default DAG runs from scratch")
        runs.append(time_dag(c, args.cores, str(ROOT) if in_repo else None))
    record = {"runs": runs, "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                        "torch": torch.__version__},
              "command": "python bench/time_dags.py " + " ".join(sys.argv[1:]),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = ["# DAG wall time", "", f"Machine: {record['machine']['platform']}, {os.cpu_count()} CPUs, "
             f"torch {record['machine']['torch']}. Command: `{record['command']}` ({record['created']}).", "",
             "| config | cores | jobs | warm interpreter | wall time |", "|---|---|---|---|---|"]
    lines += [f"| `{r['config']}` | {r['cores']} | {r['jobs']} | {'on' if r.get('warm_interpreter') else 'off'} | "
              f"{r['wall_seconds'] / 60:.1f} min |" for r in runs]
    for r in runs:
        if r.get("stages_md"):
            lines += ["", f"Where the time of `{r['config']}` went (sums of the jobs' Snakemake benchmarks; jobs "
                      "overlap, so the sums exceed the wall time):", "", r["stages_md"]]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
