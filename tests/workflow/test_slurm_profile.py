"""profiles/slurm: Snakemake reads it (dry run, no SLURM needed) and the plugin turns it into sbatch flags.

A dry run goes through Snakemake's dryrun executor, so it proves the profile parses, that ``slurm`` is
an installed executor, and which resources every job gets, but it never calls the plugin. The second
half feeds those resources to the plugin's own sbatch-string functions (no sbatch is run).
"""
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_RULES = {"sample_shard", "hps_sample", "train_run", "lora_warmup", "evaluate_system", "hps_score",
             "merge_students", "timing_system", "reg_pairs"}

pytest.importorskip("snakemake_executor_plugin_slurm", reason="needs snakemake-executor-plugin-slurm (Python >= 3.11)")


def dry_run_resources(tmp_path: Path) -> dict[str, dict]:
    """rule -> resources of its first job, as the dry run prints them."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-s", str(ROOT / "Snakefile"), "--profile",
                           str(ROOT / "profiles" / "slurm"), "--workflow-profile", "none", "--configfile", str(ROOT / "config" / "smoke.yaml"),
                           "--directory", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    found, rule = {}, None
    for line in out.splitlines():
        m = re.match(r"^(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
        m = re.match(r"^\s+resources: (.*)$", line)
        if m and rule and rule not in found:
            found[rule] = dict(kv.split("=", 1) for kv in m.group(1).split(", "))
    return found


class _Resources(dict):
    __getattr__ = dict.__getitem__


def test_slurm_profile_dry_run_and_sbatch_flags(tmp_path):
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    found = dry_run_resources(tmp_path)
    assert GPU_RULES <= set(found), sorted(GPU_RULES - set(found))
    for rule in GPU_RULES:
        r = found[rule]
        assert r["gpu"] == ("4" if rule == "train_run" else "1") and r["gpu_model"] == "a100" and int(r["cpus_per_gpu"]) >= 4, (rule, r)
        assert "cpus_per_task" not in r, f"{rule}: cpus_per_task would override cpus_per_gpu in the plugin"
    assert found["toy_eval_set"].get("gpu") in (None, "0") and found["toy_eval_set"]["runtime"] == "60"

    r = found["train_run"]
    res = _Resources(gpu=int(r["gpu"]), gpu_model=r["gpu_model"], cpus_per_gpu=int(r["cpus_per_gpu"]),
                     runtime=int(r["runtime"]), mem_mb=int(r["mem_mb"]))
    job = SimpleNamespace(resources=res, threads=1)
    params = dict(run_uuid="u", slurm_logfile="log", comment_str="train_run", account="", partition="", workdir="")
    call = get_submit_command(job, params) + set_gres_string(job)
    for flag in ("-t 2880", "--mem 64000", "--cpus-per-gpu=8", "--gpus=a100:4"):
        assert flag in call, (flag, call)
