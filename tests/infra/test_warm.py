"""The warm interpreter: same outputs and exit codes as a cold process, one server per environment,
a fresh server when sources change, and no worker outliving its client."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sb2bench._infra import warm
from sb2bench.data.prompts import write_prompts

SB2BENCH = [sys.executable, "-m", "sb2bench"]


def _warm_env(idle: str) -> Iterator[tuple[dict, Path]]:
    """Environment of a warm client whose servers live in a private folder and exit after ``idle`` idle seconds;
    the servers are killed and the folder removed afterwards."""
    folder = Path(f"/tmp/sb2w-{os.getpid()}-{time.monotonic_ns() % 10**6}")  # short: socket paths max ~100 chars
    env = dict(os.environ, SB2BENCH_WARM="1", SB2BENCH_WARM_DIR=str(folder), SB2BENCH_WARM_IDLE=idle)
    yield env, folder
    for log in folder.glob("*.log"):
        for pid in re.findall(r"pid (\d+) serving", log.read_text()):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def warm_env():
    """One server folder for the module: a server start imports torch, so the tests share one server (60 idle
    seconds keep it alive between them); each test still asserts what it needs of it."""
    yield from _warm_env("60")


@pytest.fixture()
def private_warm_env():
    """A folder of its own, for a test that watches its server exit."""
    yield from _warm_env("5")


def _run(env: dict, *args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*SB2BENCH, *args], env=env, capture_output=True, text=True, timeout=300, **kw)


def _servers(folder: Path) -> list[str]:
    return [pid for log in folder.glob("*.log") for pid in re.findall(r"pid (\d+) serving", log.read_text())]


def test_warm_matches_cold_output_and_exit_codes_and_reuses_its_server(warm_env, tmp_path):
    env, folder = warm_env
    cold_env = dict(env, SB2BENCH_WARM="0")
    config = Path(__file__).resolve().parents[2] / "config" / "smoke.yaml"
    cold = _run(cold_env, "validate-config", str(config))
    first = _run(env, "validate-config", str(config))
    second = _run(env, "validate-config", str(config))
    assert cold.returncode == first.returncode == second.returncode == 0
    assert first.stdout == cold.stdout == second.stdout and cold.stdout.startswith("world:")
    assert warm.RUSAGE_TAG in second.stderr and warm.RUSAGE_TAG not in cold.stderr
    rusage = json.loads(second.stderr.split(warm.RUSAGE_TAG)[1].splitlines()[0])
    assert rusage["max_rss_mb"] > 50 and rusage["cpu_seconds"] >= 0  # the worker holds the preloaded torch
    assert len(_servers(folder)) == 1  # the second call reused the first call's server

    bad_cold = _run(cold_env, "validate-config", str(tmp_path / "missing.yaml"))
    bad_warm = _run(env, "validate-config", str(tmp_path / "missing.yaml"))
    assert bad_cold.returncode == bad_warm.returncode == 2
    assert "missing.yaml" in bad_warm.stderr


def test_warm_sampling_is_bit_identical_to_cold(warm_env, tiny_pipeline_dir, tmp_path):
    env, _ = warm_env
    write_prompts(tmp_path / "p.jsonl", [{"index": i, "caption": c} for i, c in
                                         enumerate(["a red square", "a blue circle", "a green triangle"])])
    spec = json.dumps({"name": "s", "pipeline": str(tiny_pipeline_dir), "kind": "multistep", "steps": 2, "cfg": 2.0,
                       "seed": 3})
    outs = {}
    for mode in ("0", "1"):
        out = tmp_path / f"out{mode}"
        r = _run(dict(env, SB2BENCH_WARM=mode), "sample", "--system", spec, "--prompts", str(tmp_path / "p.jsonl"),
                 "--out", str(out), "--batch-size", "2", "--threads", "1")
        assert r.returncode == 0, r.stderr
        outs[mode] = {p.name: p.read_bytes() for p in sorted(out.glob("*.png"))}
    assert len(outs["0"]) == 3 and outs["0"] == outs["1"]


def test_server_key_follows_environment_and_sources(monkeypatch, tmp_path):
    base = warm.server_key()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # per job: the worker gets it, the server never read it
    assert warm.server_key() == base
    monkeypatch.setenv("OMP_NUM_THREADS", "7")  # read when torch loads, i.e. in the server
    assert warm.server_key() != base
    monkeypatch.delenv("OMP_NUM_THREADS")
    tree = tmp_path / "pkg"
    shutil.copytree(Path(warm.__file__).parents[1], tree, ignore=shutil.ignore_patterns("__pycache__", "*.png", "hub"))
    before = warm.sources_digest(tree)
    (tree / "cli.py").write_text((tree / "cli.py").read_text() + "\n# edited\n")
    assert warm.sources_digest(tree) != before  # an edited module never runs in an old server


def test_worker_dies_with_its_client(warm_env, tmp_path):
    env, folder = warm_env
    assert _run(env, "config-doc").returncode == 0  # starts the server
    server = int(_servers(folder)[0])
    # a worker that blocks reading stdin (a pipe nobody writes to) until its client is killed
    client = subprocess.Popen([*SB2BENCH, "validate-config", "/dev/stdin"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = _wait_for(lambda: _children(server), timeout=30)
    assert worker, "the server forked no worker"
    client.kill()
    client.wait()
    assert _wait_for(lambda: not any(_alive(p) for p in worker), timeout=30), "the worker outlived its client"
    client.stdin.close()


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _wait_for(probe, timeout: float):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = probe()
        if value:
            return value
        time.sleep(0.1)
    return probe()


def test_client_runs_cold_when_the_server_starts_no_worker(monkeypatch, capsys):
    """A server that accepts and closes (say, exiting idle as we connect) ran nothing: the client says so
    and returns None, so main() runs the command itself instead of failing the job."""
    import socket
    import threading

    folder = Path(f"/tmp/sb2w-fake-{os.getpid()}")
    monkeypatch.setenv(warm.ENV_DIR, str(folder))
    path = warm.runtime_dir() / f"{warm.server_key()}.sock"
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fake.bind(str(path))
    fake.listen(1)
    closer = threading.Thread(target=lambda: fake.accept()[0].close())
    closer.start()
    try:
        assert warm.run_in_server(["config-doc"]) is None
        assert "running cold" in capsys.readouterr().err
    finally:
        closer.join(timeout=10)
        fake.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_idle_server_exits_and_removes_its_socket(private_warm_env):
    env, folder = private_warm_env
    env = dict(env, SB2BENCH_WARM_IDLE="1")
    assert _run(env, "config-doc").returncode == 0
    assert list(folder.glob("*.sock"))
    assert _wait_for(lambda: not list(folder.glob("*.sock")), timeout=30), "the idle server left its socket"
    assert _wait_for(lambda: not any(_alive(int(pid)) for pid in _servers(folder)), timeout=30)
