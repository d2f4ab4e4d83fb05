"""A warm interpreter for DAG jobs: run ``sb2bench CMD`` in a fork of a process that already imported torch.

Every Snakemake job is a fresh ``sb2bench`` process, and importing torch, diffusers, transformers and peft
takes about 5 s of CPU before any work: in the toy world that is most of a sampling or evaluation job,
and most of the smoke DAG. With ``SB2BENCH_WARM=1`` (the Snakefile sets it unless
``resources.warm_interpreter`` is false) the ``sb2bench`` command becomes a thin client: it hands its
argv, working directory, environment and stdin/stdout/stderr to a server that holds those imports, the
server forks a worker that runs the command exactly as the cold process would, and the client exits with
the worker's exit code. A worker starts from imports only (no model, no random state, no thread pool),
so its results are bit-identical to a cold run's.

Staleness: a server is keyed by the interpreter, ``sys.path``, the installed distributions, the whole
environment (less a few per-job variables the worker receives anyway) and the *content* of sb2bench's
sources; any change starts a new server, never a stale one. A server exits after
``SB2BENCH_WARM_IDLE`` seconds (default 60) without work. If the client dies (Snakemake cancels a job),
the server kills the worker's process group.

Snakemake's ``benchmark:`` measures the client's process tree, which no longer holds the work, so the
client writes the worker's CPU seconds and peak RSS (``wait4``) to stderr, i.e. the job's log, in a line
``report/benchmarks.py`` reads (``RUSAGE_TAG``). Set ``SB2BENCH_WARM=0`` to run every command cold.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sb2bench._infra.rusage import RUSAGE_TAG

ENV_ON = "SB2BENCH_WARM"
ENV_DIR = "SB2BENCH_WARM_DIR"
ENV_IDLE = "SB2BENCH_WARM_IDLE"
COLD_COMMANDS = {"gpu-run"}  # exec another command: nothing to gain, and the exec would replace the worker
# Variables a job may set without changing what the server imported: the worker gets the client's values.
PER_JOB_ENV = {"CUDA_VISIBLE_DEVICES", "PWD", "OLDPWD", "SHLVL", "_", ENV_IDLE}
PRELOAD = ("torch", "numpy", "pandas", "safetensors.torch", "diffusers", "transformers", "peft", "open_clip",
           "sb2bench.sample.generate", "sb2bench.evaluate.score", "sb2bench.merge.interpolate", "sb2bench.train.trainer",
           "sb2bench.report.claims", "sb2bench.report.result_tables", "matplotlib.pyplot", "sb2bench.toyworld.hub")
_HEADER = struct.Struct("!Q")
_STARTED = b"S"  # the server's first byte: a worker runs the command (before it, a failure is safe to retry)


class WarmUnavailable(RuntimeError):
    """No server could be reached or started: the caller runs the command cold."""


def set_for_jobs(on: bool) -> None:
    """Called by the Snakefile: every job it starts inherits the switch."""
    os.environ[ENV_ON] = "1" if on else "0"


def wanted(argv: list[str]) -> bool:
    """$SB2BENCH_WARM=1, a command worth forking, and a platform with fork and fd passing (not Windows)."""
    return (os.environ.get(ENV_ON) == "1" and bool(argv) and argv[0] not in COLD_COMMANDS and argv[0][:1] != "-"
            and hasattr(os, "fork") and hasattr(socket, "send_fds"))


def sources_digest(root: Path | None = None) -> str:
    """Content hash of sb2bench's own sources (an edited module must never run in an old server)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _installed() -> list[str]:
    """Names (with versions) of what every sys.path folder holds: a pip install or upgrade changes it."""
    out = []
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            out += sorted(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info", ".egg-link", ".pth")))
    return out


def server_key() -> str:
    env = {k: v for k, v in os.environ.items() if k not in PER_JOB_ENV}
    blob = json.dumps({"python": sys.executable, "version": sys.version, "path": sys.path, "env": env,
                       "installed": _installed(), "sources": sources_digest(), "format": 1}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def runtime_dir() -> Path:
    base = os.environ.get(ENV_DIR) or Path(tempfile.gettempdir()) / f"sb2bench-warm-{os.getuid()}"
    path = Path(base)
    if len(str(path)) > 80:  # a Unix socket path holds at most 107 bytes; the name adds 26
        raise WarmUnavailable(f"${ENV_DIR} {path} is too long for a socket path (over 80 characters)")
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _connect(path: Path) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(path))
        return s
    except OSError:
        s.close()
        return None


def _start_server(path: Path, log: Path, timeout: float = 300.0) -> socket.socket:
    idle = os.environ.get(ENV_IDLE, "60")
    code = "import sys, json; sys.path[:] = json.loads(sys.argv[1]); import sb2bench._infra.warm as w; w.serve(sys.argv[2], float(sys.argv[3]))"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(sys.path), str(path), idle],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=os.getcwd())
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        conn = _connect(path)
        if conn is not None:
            return conn
        if proc.poll() is not None:
            raise WarmUnavailable(f"the warm server exited with code {proc.returncode}; see {log}")
        time.sleep(0.05)
    proc.kill()
    raise WarmUnavailable(f"the warm server did not listen on {path} within {timeout:.0f} s; see {log}")


def _server_connection() -> socket.socket:
    folder = runtime_dir()
    key = server_key()
    sock_path, lock_path, log = folder / f"{key}.sock", folder / f"{key}.lock", folder / f"{key}.log"
    conn = _connect(sock_path)
    if conn is not None:
        return conn
    with open(lock_path, "w") as lock:  # one client starts the server; the others wait, then connect
        fcntl.flock(lock, fcntl.LOCK_EX)
        conn = _connect(sock_path)
        if conn is None:
            sock_path.unlink(missing_ok=True)
            conn = _start_server(sock_path, log)
    return conn


def run_in_server(argv: list[str], entry: str = "sb2bench.cli:run") -> int | None:
    """The exit code of ``sb2bench argv`` run in a warm worker, or None when no server is available.

    ``entry`` ("module:function", called with argv, returns the exit code) is what the worker runs; the
    caller names it, so this module never imports the CLI that imports it."""
    try:
        conn = _server_connection()
    except (OSError, WarmUnavailable) as exc:
        print(f"[sb2bench warm] running cold: {exc}", file=sys.stderr, flush=True)
        return None
    request = json.dumps({"argv": argv, "entry": entry, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    with conn:
        try:
            socket.send_fds(conn, [_HEADER.pack(len(request))], [0, 1, 2])
            conn.sendall(request)
            started = conn.recv(1) == _STARTED
        except OSError:
            started = False
        if not started:  # e.g. the server was exiting when we connected: nothing ran, so run cold
            print("[sb2bench warm] running cold: the server did not start a worker", file=sys.stderr, flush=True)
            return None
        reply = _read_all(conn)
    if not reply:
        print("[sb2bench warm] the server closed the connection before the worker's result", file=sys.stderr,
              flush=True)
        return 1
    result = json.loads(reply)
    print(RUSAGE_TAG + json.dumps(result["rusage"]), file=sys.stderr, flush=True)
    return int(result["exit"])


def _read_all(conn: socket.socket) -> bytes:
    chunks = []
    while chunk := conn.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("client closed the connection mid-request")
        buf += chunk
    return buf


# ----------------------------------------------------------------------------------------- server side

def serve(sock_path: str, idle: float) -> None:
    """Import the heavy modules, then fork one worker per request until ``idle`` seconds pass without one."""
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception as exc:  # an optional module missing only costs its import later
            print(f"preload {name}: {exc!r}", flush=True)
    tmp = f"{sock_path}.{os.getpid()}.tmp"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(tmp)
    listener.listen(64)
    os.replace(tmp, sock_path)  # clients see a socket only once it listens
    inode = os.stat(sock_path).st_ino  # to remove our own socket file at exit, not a successor's
    print(f"pid {os.getpid()} serving on {sock_path}", flush=True)
    workers: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    try:
        while workers or time.monotonic() - last_active < idle:
            ready, _, _ = select.select([listener, *workers.values()], [], [], 0.2)
            for s in ready:
                if s is listener:
                    conn, _ = listener.accept()
                    pid = _fork_worker(conn, listener, workers)
                    if pid:
                        workers[pid] = conn
                elif not s.recv(1, socket.MSG_PEEK):  # the client is gone: stop its worker
                    pid = next(p for p, c in workers.items() if c is s)
                    _kill_group(pid)
            _reap(workers)
            if ready or workers:  # a request served within one pass counts as activity too
                last_active = time.monotonic()
    finally:
        if os.path.exists(sock_path) and os.stat(sock_path).st_ino == inode:
            os.unlink(sock_path)
        listener.close()


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(workers: dict[int, socket.socket]) -> None:
    while workers:
        try:
            pid, status, ru = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = workers.pop(pid, None)
        if conn is None:
            continue
        rusage = {"cpu_seconds": round(ru.ru_utime + ru.ru_stime, 2), "max_rss_mb": round(ru.ru_maxrss / 1024, 1)}
        try:
            conn.sendall(json.dumps({"exit": os.waitstatus_to_exitcode(status), "rusage": rusage}).encode())
        except OSError:
            pass
        conn.close()


def _fork_worker(conn: socket.socket, listener: socket.socket, workers: dict[int, socket.socket]) -> int:
    """Fork a worker for the request on ``conn``; the parent returns its pid (0 if the request was bad)."""
    try:
        conn.settimeout(30)
        header, fds, _, _ = socket.recv_fds(conn, _HEADER.size, 3)
        if len(fds) != 3 or len(header) != _HEADER.size:
            raise ConnectionError("a request must carry stdin, stdout and stderr")
        request = json.loads(_recv_exact(conn, _HEADER.unpack(header)[0]))
        conn.settimeout(None)
    except (OSError, ValueError) as exc:
        print(f"bad request: {exc!r}", flush=True)
        conn.close()
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        for fd in fds:
            os.close(fd)
        try:
            os.setpgid(pid, pid)  # also done by the child: whichever runs first, the group exists for killpg
        except OSError:
            pass
        try:
            conn.sendall(_STARTED)
        except OSError:
            pass  # the client is gone: the main loop sees it and stops the worker
        return pid
    for s in (listener, conn, *workers.values()):
        s.close()
    try:
        os.setpgid(0, 0)  # the server kills this group if the client goes away
    except OSError:
        pass
    code = _run_worker(request, fds)
    os._exit(code)


def _run_worker(request: dict, fds: list[int]) -> int:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)
    sys.stdin = open(0, closefd=False)
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["sb2bench", *request["argv"]]
    code = 1
    try:
        import importlib

        module, _, function = request["entry"].partition(":")
        code = getattr(importlib.import_module(module), function)(request["argv"])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        import atexit
        import logging

        try:
            atexit._run_exitfuncs()
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
    return code
