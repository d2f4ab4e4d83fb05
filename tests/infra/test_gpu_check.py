"""bench/gpu_check.sh: valid bash, and its CPU toy switch runs every stage end to end and writes the reports
(the GPU run is the same script at SD 2.1-base size)."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["onestep", "vsd", "mfu", "eval", "pipeline", "train", "timing"]


@pytest.mark.parametrize("script", ["bench/gpu_check.sh", "bench/make_wheels.sh"])
def test_scripts_parse(script):
    subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


@pytest.mark.bench
def test_cpu_toy_switch_writes_every_report(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PYTHON": sys.executable,
           "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    run = subprocess.run(["bash", str(ROOT / "bench" / "gpu_check.sh"), "--cpu-toy", "--work", str(tmp_path / "w"),
                          "--out-dir", str(tmp_path / "reports")], capture_output=True, text=True, env=env, timeout=900)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    reports = tmp_path / "reports"
    summary = json.loads((reports / "gpu_check.json").read_text())
    assert [s["stage"] for s in summary["stages"]] == STAGES and all(s["status"] == "ok" for s in summary["stages"])
    assert summary["mode"] == "cpu-toy" and summary["gpu"].startswith("no GPU")
    assert "GPU: **no GPU" in (reports / "gpu_check.md").read_text()
    for name in ("onestep_throughput", "vsd_step", "gpu_check_mfu", "gpu_check_eval_pass"):
        assert json.loads((reports / f"{name}.json").read_text())["machine"], name
        assert (reports / f"{name}.md").read_text().startswith("# "), name
    assert "seconds / image" in (reports / "gpu_check_timing.md").read_text()
    train = json.loads((reports / "gpu_check_train.json").read_text())
    assert train["steps"] == 2 and train["nonfinite_skips"] == 0
    assert "[train " in (tmp_path / "w" / "logs" / "train.log").read_text()  # progress lines in the log
    print(f"gpu_check.sh --cpu-toy: {time.time() - t0:.0f} s wall")
