"""How one training job becomes N data-parallel processes (one per GPU): ``accelerate launch``.

One function serves both entry points: the train rule renders :func:`launch_prefix` into its shell
command (so ``snakemake -p`` shows exactly what runs) and ``sb2bench train --processes N`` execs it.
With N <= 1 the prefix is plain ``sb2bench``: one process, the command of old. Choices:

- ``python -m accelerate.commands.launch``, not the ``accelerate`` console script: that one imports
  every subcommand, and ``estimate`` imports timm and torchvision, which fails on CPU-only torch
  before sb2bench's torchvision shim can load; the launch module imports none of it.
- ``--multi_gpu`` on CPU too: accelerate's ``--cpu`` with several processes needs MPI (mpirun). Its
  torchrun path works without GPUs, and the trainer's Accelerator then joins a gloo group. ``cpu``
  hides the GPUs (CUDA_VISIBLE_DEVICES="") so a test or debugging run is a CPU run on any machine.
- ``--main_process_port 0``: a free port per job, so parallel multi-GPU jobs on one machine never
  collide; ``--mixed_precision no``/``--dynamo_backend no`` only silence accelerate's warnings about
  missing defaults (the run config's ``mixed_precision`` is passed to the Accelerator explicitly).
"""
from __future__ import annotations

import os
import shlex
import sys


def launch_prefix(processes: int, python: str = "python") -> list[str]:
    """argv that runs ``sb2bench`` in ``processes`` processes (append ``train --config ... --out ...``)."""
    if processes <= 1:
        return ["sb2bench"]
    return [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes),
            "--num_machines", "1", "--main_process_port", "0", "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m", "sb2bench"]


def launch_shell(processes: int) -> str:
    """:func:`launch_prefix` as shell text, for the train rule."""
    return shlex.join(launch_prefix(processes))


def train_argv(processes: int, config: str, out: str, python: str = "python") -> list[str]:
    return launch_prefix(processes, python) + ["train", "--config", config, "--out", out]


def exec_train(processes: int, config: str, out: str, cpu: bool = False) -> None:
    """Replace this process by the ``processes``-process launch of ``sb2bench train`` (never returns).
    The same interpreter runs the launcher, so a venv need not be on PATH."""
    env = dict(os.environ)
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    argv = train_argv(processes, config, out, sys.executable)
    print(f"[train] launching {processes} processes: {shlex.join(argv)}", file=sys.stderr, flush=True)
    os.execvpe(argv[0], argv, env)
