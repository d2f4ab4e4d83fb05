"""The smoke config end to end: retrain a tiny toy hub, train every default run, merge, score, and write
every table of the default config with the rows and columns of the committed reports/toy tables."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "2", "-s", str(ROOT / "Snakefile"), "--directory",
         str(workdir), "--configfile", str(ROOT / "config" / "smoke.yaml"), *args],
        capture_output=True, text=True, env=env, timeout=1500)


@pytest.mark.workflow
def test_smoke_dag_end_to_end(tmp_path):
    run = snakemake(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (tmp_path / "reports/toy/teacher.md").read_text()
    assert "joint accuracy" in report and "chance" in report
    assert "FID" in (tmp_path / "reports/toy/eval.md").read_text()
    metrics = json.loads((tmp_path / "results/toy/metrics/turbo-1step/metrics.json").read_text())
    assert set(metrics["metrics"]) >= {"fid", "kid", "precision", "recall", "clip_score", "attribute_accuracy"}
    assert (tmp_path / "reports/toy/teacher_grid.png").stat().st_size > 0
    hps = json.loads((tmp_path / "results/toy/metrics/turbo-1step/hps.json").read_text())
    assert set(hps["metrics"]) == {"hps_anime", "hps_concept_art", "hps_painting", "hps_photo", "hps_average"}
    runs = tmp_path / "results/toy/runs"
    assert (runs / "model-a/student/unet/config.json").exists()
    lora = json.loads((runs / "sb-init-lora/student/lora_config.json").read_text())
    assert lora["base"] == "results/toy/runs/swiftbrush/student"  # Table 7: initialised from another run
    assert (runs / "model-a/checkpoints").is_dir() and (runs / "model-a/log.csv").exists()
    trained = json.loads((tmp_path / "results/toy/metrics/sb-init-lora/metrics.json").read_text())
    assert trained["system"]["system"]["unet"] == "results/toy/runs/sb-init-lora/student"
    # CI regenerates every table: the smoke tables have the committed default tables' rows and columns
    committed = sorted((ROOT / "reports/toy").glob("table*.csv"))
    assert committed
    for csv in committed:
        ours, ref = pd.read_csv(tmp_path / "reports/toy" / csv.name), pd.read_csv(csv)
        assert list(ours.columns) == list(ref.columns), csv.name
        assert list(ours["row"]) == list(ref["row"]), csv.name
    index = (tmp_path / "reports/toy/index.md").read_text()
    assert "The paper's claims at this scale" in index and "[sb2bench reports: toy world]" in (
        tmp_path / "reports/index.md").read_text()
    table = (tmp_path / "reports/toy/table1.md").read_text()
    assert "[SBv2 T1]" in table and "SwiftBrush (paper only) | 15.46" in table
    hub = tmp_path / "results/toy/hub"
    for folder in ("sd-toy/unet", "sd-toy-turbo/unet", "taesd-toy", "clip-toy", "inception-toy",
                   "classifier-toy", "vae-toy", "tokenizer-toy"):
        assert (hub / folder).is_dir(), folder
    assert "Toy hub provenance" in (hub / "PROVENANCE.md").read_text()
    acc = json.loads((tmp_path / "results/toy/metrics/teacher-cfg4.5/attributes.json").read_text())
    assert acc["n"] == 8 and 0.0 <= acc["joint_accuracy"] <= 1.0
    # evaluation.subset: the turbo is sampled on all 10 prompts, scored on the first 8 like every system, and
    # on all 10 too; a student is sampled on the 8 only
    samples = tmp_path / "results/toy/samples"
    assert len(list((samples / "turbo-1step/images").glob("*.png"))) == 10
    assert len(list((samples / "model-a/images").glob("*.png"))) == 8
    whole = json.loads((tmp_path / "results/toy/metrics/turbo-1step/whole_set/metrics.json").read_text())
    assert metrics["n"] == 8 and whole["n"] == 10
    assert "toy turbo, 1 step, whole set | 10 |" in (tmp_path / "reports/toy/eval.md").read_text()
    for log in ("logs/toy/hub/sd-toy.log", "logs/toy/report/teacher.log"):
        assert (tmp_path / log).exists(), log

    again = snakemake(tmp_path, "-n")  # a finished DAG has nothing left to do
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr

    html = tmp_path / "reports" / "report.html"
    rep = snakemake(tmp_path, "--report", str(html))
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert html.stat().st_size > 100_000


def test_lint_is_clean():
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "-s", str(ROOT / "Snakefile"),
                           "--configfile", str(ROOT / "config" / "smoke.yaml")],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0
    assert "Congratulations" in proc.stdout + proc.stderr
