"""What every result file records about how it was made."""
from __future__ import annotations

import importlib.metadata
import subprocess
import time
from pathlib import Path

PACKAGES = ("sb2bench", "torch", "diffusers", "transformers", "peft", "open_clip_torch", "clean-fid",
            "numpy", "scipy", "pandas", "snakemake")


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def record(**fields) -> dict:
    return {**fields, "versions": package_versions(), "git_commit": git_commit(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
