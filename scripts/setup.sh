#!/usr/bin/env bash
# Create (or update) the project virtual environment with the verified dependency set.
#   VENV=path   where to put it (default .venv)
# torch is installed first and pinned (constraints/cpu.txt): an unconstrained install would pull a
# CUDA torch of several GB, and torchvision must match torch exactly. On a machine whose pip finds the
# CPU build of torch 2.13.0 (as here) that is what is installed; elsewhere PyPI's (CUDA) build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -c constraints/cpu.txt -e ".[test]"
"$VENV/bin/python" -c "import sb2bench, torchvision, diffusers, transformers, open_clip, cleanfid; print('sb2bench environment ready:', sb2bench.__version__)"
