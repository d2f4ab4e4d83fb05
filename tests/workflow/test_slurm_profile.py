"""profiles/slurm as a user runs it: the documented command, no --cores, through the real SLURM executor plugin.

A dry run cannot catch what a cluster run meets: Snakemake's dry-run executor sets ``--cores 1``, so a rule
that reads ``workflow.cores`` parses there and fails on a cluster ("Workflow requires a total number of cores
to be defined"). These tests run the documented command for real against a pretend cluster
(tests/workflow/slurm_fake_cluster.py: a recording ``sbatch``, every job "finished" by creating its outputs), so every
job's resources are evaluated with ``workflow.cores`` unset and turned into the plugin's own sbatch calls.
"""
import ast
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
GPU_RULES = {"sample_shard", "hps_sample", "train_run", "lora_warmup", "evaluate_system", "evaluate_whole_set", "hps_score",
             "merge_students", "timing_system", "reg_pairs"}
COMMAND = ["--workflow-profile", str(ROOT / "profiles" / "slurm"), "--configfile", str(ROOT / "config" / "smoke.yaml")]

pytest.importorskip("snakemake_executor_plugin_slurm", reason="needs snakemake-executor-plugin-slurm (Python >= 3.11)")


def sbatch_calls(tmp_path: Path, *extra: str) -> list[tuple[str, str]]:
    """(rule, sbatch arguments) of every job the documented command submits, plus ``extra`` arguments."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_") and k != "SNAKEMAKE_PROFILE"}
    env.update(PATH=f"{Path(sys.executable).parent}:{env['PATH']}", HF_HUB_OFFLINE="1", SB2BENCH_WARM="0",
               PYTHONPATH=str(ROOT))
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("slurm_fake_cluster.py")), str(tmp_path / "fake"),
                           "-s", str(ROOT / "Snakefile"), *COMMAND, "--directory", str(work), *extra],
                          capture_output=True, text=True, env=env, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "requires a total number of cores" not in out
    calls = []
    for line in (tmp_path / "fake" / "sbatch.txt").read_text().splitlines():
        comment = re.search(r"--comment (\S+)", line).group(1)
        calls.append((re.sub(r"_wildcards_.*$", "", comment.removeprefix("rule_")), line))
    return calls


def flag(call: str, pattern: str) -> str | None:
    m = re.search(pattern, call)
    return m.group(1) if m else None


def test_toy_world_runs_without_cores_and_asks_for_no_gpu(tmp_path):
    """The smoke DAG through the documented command alone: every job submitted, none asks for a GPU or a GRES
    type, each asks for the profile's small default memory and time."""
    calls = sbatch_calls(tmp_path)
    rules = {rule for rule, _ in calls}
    assert GPU_RULES <= rules, sorted(GPU_RULES - rules)
    assert len(calls) > 140  # the smoke DAG submits 145 jobs (every one but `all`)
    for rule, call in calls:
        assert "--gpus" not in call and "--gres" not in call and "--cpus-per-gpu" not in call, (rule, call)
        assert flag(call, r"--mem (\d+)") == "4000" and flag(call, r" -t (\d+)") == "60", (rule, call)
        assert "--cores" not in call.split("--wrap")[0], call


def test_one_rule_overrides_leave_the_others_intact(tmp_path):
    """GPUs and a GRES type from the config reach sbatch; a config override of one rule's memory and a command-line
    --set-resources of another rule's time change only that key of that rule."""
    overlay = tmp_path / "gpus.yaml"
    overlay.write_text("resources:\n  gpus_per_job: 1\n  gpus_per_train_job: 2\n  gpu_model: a100\n"
                       "  rules: {train_run: {mem_mb: 1234}}\n")
    calls = sbatch_calls(tmp_path, "--configfile", str(ROOT / "config" / "smoke.yaml"), str(overlay),
                         "--set-resources", "evaluate_system:runtime=7")
    seen = set()
    for rule, call in calls:
        seen.add(rule)
        gpus = {"train_run": "a100:2"}.get(rule, "a100:1") if rule in GPU_RULES else None
        assert flag(call, r"--gpus=(\S+)") == gpus, (rule, call)
        assert flag(call, r"--mem (\d+)") == ("1234" if rule == "train_run" else "4000"), (rule, call)
        assert flag(call, r" -t (\d+)") == ("7" if rule == "evaluate_system" else "60"), (rule, call)
    assert {"train_run", "evaluate_system", "sample_shard"} <= seen


def real_world_table() -> dict:
    """REAL_WORLD_RESOURCES as rules/common.smk writes it (a literal, read without running Snakemake)."""
    text = (ROOT / "rules" / "common.smk").read_text()
    start = text.index("\nREAL_WORLD_RESOURCES = ") + 1
    return ast.literal_eval(ast.parse(text[start:text.index("\n}\n", start) + 2]).body[0].value)


class _Resources(dict):
    __getattr__ = dict.__getitem__


def test_real_world_table_gives_sbatch_the_paper_jobs_resources():
    """The real world's per-rule table covers every GPU rule and, through the plugin's own functions, asks sbatch
    for SBv2's training job: 4 A100s, 8 CPUs each, 64 GB, 48 h."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    table = real_world_table()
    assert GPU_RULES <= set(table), sorted(GPU_RULES - set(table))
    for rule in GPU_RULES:
        assert table[rule]["cpus_per_gpu"] >= 4 and table[rule]["mem_mb"] >= 32000, rule
        assert "cpus_per_task" not in table[rule], f"{rule}: cpus_per_task would override cpus_per_gpu in the plugin"

    job = SimpleNamespace(resources=_Resources(gpu=4, gpu_model="a100", **table["train_run"]), threads=1)
    params = dict(run_uuid="u", slurm_logfile="log", comment_str="train_run", account="", partition="", workdir="")
    call = get_submit_command(job, params) + set_gres_string(job)
    for expected in ("-t 2880", "--mem 64000", "--cpus-per-gpu=8", "--gpus=a100:4"):
        assert expected in call, (expected, call)
