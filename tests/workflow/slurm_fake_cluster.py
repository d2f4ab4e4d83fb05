"""Run the Snakemake CLI with the real SLURM executor plugin against a cluster that only pretends.

``python tests/workflow/slurm_fake_cluster.py DIR <snakemake arguments>``: a non-dry run, so Snakemake parses the workflow
and evaluates every job's resources as on a cluster (no ``--cores``: ``workflow.cores`` is unset), and the
plugin builds each real ``sbatch`` call. DIR/bin, first on PATH, holds an ``sbatch`` that appends its command
line to DIR/sbatch.txt and prints a job id, an ``sinfo`` with one partition and silent ``sacct`` & co.; the patched status check then "finishes"
every submitted job by creating its outputs, logs and benchmark file (empty), so the whole DAG is submitted in
dependency order in seconds. Nothing is computed.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import snakemake_executor_plugin_slurm as plugin
from snakemake.io import is_flagged


def _create_products(job) -> None:
    """Touch what the job would have written, so Snakemake accepts it as finished and runs its consumers."""
    for f in job.output:
        p = Path(f)
        if is_flagged(f, "directory"):
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.touch()
    for f in list(job.log) + ([job.benchmark] if job.benchmark else []):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).touch()


async def _finish_all(self, active_jobs):
    """Every submitted job succeeds at the first status check (the real one asks sacct)."""
    for info in active_jobs:
        _create_products(info.job)
        self.report_job_success(info)
    self.next_seconds_between_status_checks = 0.2
    return
    yield  # an async generator that yields nothing: no job is still running


FAKE_SBATCH = """#!/bin/sh
printf '%s\\n' "$*" >> "{record}"
wc -l < "{record}"
"""


def main(argv: list[str]) -> None:
    fake = Path(argv[0]).resolve()
    (fake / "bin").mkdir(parents=True, exist_ok=True)
    tools = {"sbatch": FAKE_SBATCH.format(record=fake / "sbatch.txt"), "sinfo": "#!/bin/sh\necho PARTITION; echo debug*\n"}
    tools.update({name: "#!/bin/sh\n" for name in ("sacct", "sacctmgr", "sshare", "scontrol", "squeue", "scancel")})
    for name, text in tools.items():
        (fake / "bin" / name).write_text(text)
        (fake / "bin" / name).chmod(0o755)
    os.environ["PATH"] = f"{fake / 'bin'}:{os.environ['PATH']}"
    plugin.common_settings = dataclasses.replace(plugin.common_settings, init_seconds_before_status_checks=0)
    plugin.Executor.check_active_jobs = _finish_all
    from snakemake.cli import main as snakemake_main

    snakemake_main(argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
