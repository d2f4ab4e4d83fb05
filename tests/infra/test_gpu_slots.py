"""Local GPU assignment: concurrent jobs get distinct slots, a surplus job waits, no GPU = passthrough."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sb2bench._infra.gpu_slots import GpuSlotError, assignment_needed, claim, visible_gpus

# a fake GPU job: report CUDA_VISIBLE_DEVICES, then hold the slot until its release file appears
JOB = ("import os, sys, time, pathlib; d = pathlib.Path(sys.argv[1]); "
       "(d / 'seen').write_text(os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')); "
       "[time.sleep(0.05) for _ in iter(lambda: (d / 'release').exists(), True)]")


def start_job(tmp: Path, name: str, env: dict, gpus: int = 1) -> tuple[subprocess.Popen, Path]:
    d = tmp / name
    d.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "sb2bench", "gpu-run", "--gpus", str(gpus), "--poll", "0.05",
                             "--lock-dir", str(tmp / "locks"), "--", sys.executable, "-c", JOB, str(d)],
                            env=env, stderr=subprocess.PIPE, text=True)
    return proc, d


def wait_for(path: Path, timeout: float = 30.0) -> str:
    t0 = time.monotonic()
    while not path.exists():
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.05)
    time.sleep(0.05)
    return path.read_text()


def env_with(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SB2BENCH_GPUS")}
    return {**env, **extra}


def test_two_jobs_get_different_gpus_and_a_third_waits(tmp_path):
    env = env_with(SB2BENCH_GPUS="2")
    (a, da), (b, db) = start_job(tmp_path, "a", env), start_job(tmp_path, "b", env)
    seen = {wait_for(da / "seen"), wait_for(db / "seen")}
    assert seen == {"0", "1"}
    c, dc = start_job(tmp_path, "c", env)
    time.sleep(1.0)
    assert not (dc / "seen").exists(), "a third job started while both slots were held"
    (da / "release").touch()
    assert a.wait(30) == 0
    assert wait_for(dc / "seen") == ({"0", "1"} - {(db / "seen").read_text()}).pop()  # a's slot
    (db / "release").touch()
    (dc / "release").touch()
    assert b.wait(30) == 0 and c.wait(30) == 0
    assert "waiting for 1 free GPU slot" in c.stderr.read()


def test_gpu_list_and_multi_gpu_jobs(tmp_path):
    env = env_with(SB2BENCH_GPUS="3,5,7")
    job, d = start_job(tmp_path, "pair", env, gpus=2)
    got = wait_for(d / "seen").split(",")
    assert len(got) == 2 and set(got) <= {"3", "5", "7"}
    (d / "release").touch()
    assert job.wait(30) == 0


def test_no_gpu_runs_the_command_unchanged(tmp_path):
    for name, env, gpus in (("none", env_with(SB2BENCH_GPUS="0"), 1), ("zero", env_with(SB2BENCH_GPUS="2"), 0),
                            ("slurm", {**env_with(), "CUDA_VISIBLE_DEVICES": "6"}, 1)):
        job, d = start_job(tmp_path, name, env, gpus=gpus)
        (d / "release").touch()
        assert job.wait(30) == 0
        assert (d / "seen").read_text() == ("6" if name == "slurm" else "<unset>"), name
    assert not (tmp_path / "locks").exists()  # nothing was claimed


def test_exit_code_passes_through(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sb2bench", "gpu-run", "--lock-dir", str(tmp_path), "--",
                           sys.executable, "-c", "import sys; sys.exit(3)"], env=env_with(SB2BENCH_GPUS="1"))
    assert proc.returncode == 3


def test_visible_gpus_and_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("SB2BENCH_GPUS", "3")
    assert visible_gpus() == ["0", "1", "2"]
    monkeypatch.setenv("SB2BENCH_GPUS", "1,4")
    assert visible_gpus() == ["1", "4"]
    with pytest.raises(GpuSlotError, match="resources.gpus_per_job"):
        claim(3, ["0", "1"], tmp_path)
    held = claim(1, ["0"], tmp_path)
    with pytest.raises(GpuSlotError, match="after 0 s"):
        claim(1, ["0"], tmp_path, poll=0.01, timeout=0.05)
    os.close(held[0][1])
    again = claim(1, ["0"], tmp_path, timeout=1)  # released with its descriptor
    os.close(again[0][1])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    assert assignment_needed(1)  # SB2BENCH_GPUS overrides what the environment chose
    monkeypatch.delenv("SB2BENCH_GPUS")  # a scheduler (SLURM) chose already: keep its choice
    assert not assignment_needed(1) and not assignment_needed(0)
