#!/usr/bin/env bash
# Fill the repository's ignored .whl/ folder with the wheels bench/gpu_check.sh installs on a GPU machine that
# lacks them (a bare machine with PyTorch but without diffusers, open_clip or clean-fid, and no internet).
# Run here, on a machine with internet:   bash bench/make_wheels.sh [--python-version 3.12]
# Pure-Python wheels at the versions of constraints/cpu.txt, plus the few dependencies such a machine lacks;
# PyTorch, transformers, peft, accelerate and the scientific stack are expected there already (see the list
# gpu_check.sh checks). The folder is ignored by git (/.whl/ in .gitignore).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYVER=3.12
[ "${1:-}" = "--python-version" ] && PYVER="$2"
pin() { grep -i "^$1==" "$ROOT/constraints/cpu.txt" | head -1 || true; }
PACKAGES=("$(pin diffusers)" "$(pin open_clip_torch)" "$(pin clean-fid)" ftfy wcwidth importlib_metadata)
mkdir -p "$ROOT/.whl"
python3 -m pip download --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d "$ROOT/.whl" "${PACKAGES[@]}"
ls -l "$ROOT/.whl"
du -sh "$ROOT/.whl"
