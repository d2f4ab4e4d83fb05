"""SBv2 Table 8 timing protocol on the tiny pipeline: the record, the table, the config checks."""
import json
import re
from pathlib import Path

import pytest

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.sample.generate import SystemSpec
from sb2bench._infra.device import resolve_runtime
from sb2bench.evaluate.timing import time_system, unet_evaluations, write_timing_table


def test_time_system_records_protocol_and_hardware(tiny_pipeline_dir, tmp_path):
    specs = {"teacher": SystemSpec(name="teacher", pipeline=str(tiny_pipeline_dir), steps=2, cfg=4.5),
             "onestep": SystemSpec(name="onestep", pipeline=str(tiny_pipeline_dir), kind="onestep")}
    rows = []
    for name, spec in specs.items():
        out = tmp_path / f"{name}.json"
        r = time_system(spec, out, warmup=1, runs=2, repeats=3, threads=1)
        assert json.loads(out.read_text())["seconds_per_image"] == r["seconds_per_image"]
        assert len(r["repeats_seconds_per_image"]) == 3 and r["seconds_per_image"] > 0
        assert r["seconds_per_image_std"] >= 0 and r["images_per_second"] == pytest.approx(1 / r["seconds_per_image"])
        assert r["runtime"]["device"] == "cpu" and r["runtime"]["dtype"] == "float32"  # fp32 on CPU, recorded
        assert r["protocol"]["warmup"] == 1 and r["protocol"]["runs"] == 2 and r["protocol"]["batch_size"] == 1
        assert r["hardware"]["torch_threads"] == 1 and r["versions"]["torch"]
        rows.append({"label": name, "file": str(out), "paper_row": "sd21_cfg4.5" if name == "teacher" else None})
    assert unet_evaluations(specs["teacher"]) == 4 and unet_evaluations(specs["onestep"]) == 1
    text = write_timing_table({"systems": rows, "paper_table": "sbv2_t8"}, tmp_path / "timing.md", "Timing")
    assert "| teacher | 4 | cpu, float32 |" in text and "1.77 s" in text  # the paper's SD 2.1 cfg 4.5 figure
    assert "| onestep | 1 |" in text and " – |" in text


def test_timing_arguments_are_checked(tiny_pipeline_dir, tmp_path):
    spec = SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), kind="onestep")
    with pytest.raises(ValueError, match="runs"):
        time_system(spec, tmp_path / "x.json", runs=0)
    assert resolve_runtime("cpu", "auto", "timing")[1].is_floating_point
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_runtime("cpu", "float16", "timing")


def test_timing_config_names_configured_systems(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("timing: {enabled: true, systems: [{system: nope}]}\n")
    with pytest.raises(ConfigError, match=r"timing.systems\[0\].system"):
        load_config(bad)
    bad.write_text("timing: {enabled: true, systems: [{system: teacher-cfg4.5, paper_row: nope}]}\n")
    with pytest.raises(ConfigError, match="paper_row"):
        load_config(bad)


def test_a_clone_with_the_committed_timing_table_times_its_own_machine(tmp_path):
    """reports/toy/timing.md is committed; its per-system results are not: the DAG must time this machine
    again instead of treating the committed table as up to date."""
    import os
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "reports" / "toy").mkdir(parents=True)
    shutil.copy(root / "reports" / "toy" / "timing.md", tmp_path / "reports" / "toy" / "timing.md")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "-s", str(root / "Snakefile"),
                           "--directory", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert re.search(r"^timing_system\s+2$", out, re.M) and re.search(r"^timing_report\s+1$", out, re.M), out[-3000:]
