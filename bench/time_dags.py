"""Wall time of the default and smoke DAGs from a clean working directory.

Writes reports/bench/dag_times.json and .md (machine, config, commit, warm interpreter on or off, wall seconds
per run), the figures behind the targets in docs/workflow.md (default DAG <= 45 min, smoke DAG <= 3 min on 2
CPU cores) and behind the warm interpreter's keep-or-drop rule (docs/internals.md: kept only while it saves
>= 20 % of the wall time).

    python bench/time_dags.py [--configs default smoke] [--cores 2] [--warm on off] [--append]

``--append`` keeps the rows already in the report and replaces only those of the same config, warm setting
and commit, so runs made at different times (a 50-minute default DAG, then smoke DAGs) end in one table.
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

from sb2bench._infra.atomic import atomic_file, write_json

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The commit the DAG ran (with ``+dirty`` when the working tree's code or config differs from it; changes
    under reports/ do not count: they are outputs, this script's own among them, and a second run would read the
    first's rows as a dirty tree)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
                           cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def machine() -> str:
    """The CPU model and the kernel build: runs on different virtual machines are not comparable."""
    cpu = "?"
    info = Path("/proc/cpuinfo")
    if info.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in info.read_text().splitlines()
                    if line.startswith("model name")), "?")
    return f"{cpu}, {platform.release()}"


def _warm_override(folder: str, warm: bool) -> Path:
    """A second config file that sets resources.warm_interpreter (Snakemake merges config files key by key)."""
    path = Path(folder) / f"warm_{'on' if warm else 'off'}.yaml"
    path.write_text(f"resources:\n  warm_interpreter: {str(warm).lower()}\n")
    return path


def time_dag(config: str, cores: int, workdir: str | None = None, warm: bool | None = None) -> dict:
    """Run one DAG from scratch in ``workdir`` (a fresh temporary folder when None) and time it; ``warm``
    overrides the config's resources.warm_interpreter (None: the config's own value)."""
    from sb2bench.plan.config import load_config
    from sb2bench.plan.paths import reports_dir

    cfg = load_config(ROOT / "config" / f"{config}.yaml")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    ran = commit()  # before the run: an in-repo DAG rewrites reports/, which would read as a dirty tree
    with tempfile.TemporaryDirectory() as tmp:
        work = workdir or tmp
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "-s", str(ROOT / "Snakefile"),
                               "--directory", work, "--configfile", str(ROOT / "config" / f"{config}.yaml")]
                              + ([] if warm is None else [str(_warm_override(tmp, warm))]),
                              capture_output=True, text=True, env=env)
        wall = time.time() - t0
        found = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.MULTILINE)
        jobs = int(found.group(1)) if found else None
        bench = Path(work) / reports_dir(cfg) / "benchmarks.md"  # per-stage sums of the jobs' own timings
        stages = bench.read_text().split("\n\n", 2)[2].split("\n\n")[0] if bench.exists() else None
    if proc.returncode != 0:
        raise RuntimeError(f"{config} DAG failed:\n{proc.stderr[-3000:]}")
    if warm is None:
        warm = cfg["resources"]["warm_interpreter"]
    return {"config": f"config/{config}.yaml", "cores": cores, "wall_seconds": round(wall, 1), "jobs": jobs,
            "warm_interpreter": warm, "commit": ran, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(), "stages_md": stages}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", nargs="+", default=["default", "smoke"])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "dag_times"))
    ap.add_argument("--default-in-repo", action="store_true",
                    help="run the default DAG in the repository itself, so its reports land in reports/ "
                         "(its results/ must not exist yet); the same as --in-repo default")
    ap.add_argument("--in-repo", nargs="+", default=[],
                    help="run these configs in the repository itself (e.g. toy_full, whose reports land in "
                         "reports/toy_full/); results/toy must not exist yet, so list one per invocation")
    ap.add_argument("--warm", nargs="+", choices=["on", "off", "config"], default=["config"],
                    help="run each DAG with the warm interpreter on, off, or as its config says (default)")
    ap.add_argument("--append", action="store_true",
                    help="keep the report's other rows (same config, warm setting and commit are replaced)")
    args = ap.parse_args()
    import torch

    runs = []
    for c in args.configs:
        in_repo = (args.default_in_repo and c == "default") or c in args.in_repo
        stale = [d for d in ("data", "samples", "metrics") if (ROOT / "results" / "toy" / d).exists()]
        if in_repo and stale:
            raise SystemExit(f"results/toy/{{{','.join(stale)}}} exist: remove them so the {c} DAG runs from scratch")
        for w in args.warm:
            runs.append(time_dag(c, args.cores, str(ROOT) if in_repo else None,
                                 {"on": True, "off": False, "config": None}[w]))
            in_repo = False  # results/ holds the first run's outputs now: the next one runs in a temporary folder
    out = Path(args.out)
    if args.append and out.with_suffix(".json").exists():
        key = lambda r: (r["config"], r.get("warm_interpreter"), r.get("commit"))  # noqa: E731
        new = {key(r) for r in runs}
        old = json.loads(out.with_suffix(".json").read_text())["runs"]
        runs = [r for r in old if key(r) not in new] + runs
    record = {"runs": runs, "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                                        "torch": torch.__version__},
              "command": "python bench/time_dags.py " + " ".join(sys.argv[1:]),
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), record)
    lines = ["# DAG wall time", "", f"Machine: {record['machine']['platform']}, {os.cpu_count()} CPUs, "
             f"torch {record['machine']['torch']}. Command: `{record['command']}` ({record['created']}).", "",
             "| config | commit | finished | cores | jobs | warm interpreter | wall time | machine (CPU, kernel) |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| `{r['config']}` | {r.get('commit', '?')} | {r.get('finished', '?')} | {r['cores']} | {r['jobs']} | "
              f"{'on' if r.get('warm_interpreter') else 'off'} | {r['wall_seconds'] / 60:.1f} min | "
              f"{r.get('machine', '? (not recorded)')} |" for r in runs]
    for r in runs:
        if r.get("stages_md"):
            lines += ["", f"Where the time of `{r['config']}` ({r.get('commit', '?')}, warm interpreter "
                      f"{'on' if r.get('warm_interpreter') else 'off'}) went (sums of the jobs' Snakemake benchmarks; jobs "
                      "overlap, so the sums exceed the wall time):", "", r["stages_md"]]
    with atomic_file(out.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
