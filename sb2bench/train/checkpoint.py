"""``checkpoint-{step}`` folders: written whole or not at all, rotated, found again on rerun.

A checkpoint holds every trainable tensor (safetensors, one file per group), the optimiser /
LR-schedule / RNG states (torch.save, loaded with weights_only=True) and a small JSON with the
step and the config hash, so a rerun resumes only a run of the same config.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from sb2bench._infra.atomic import atomic_dir, write_json

PATTERN = re.compile(r"^checkpoint-(\d+)$")


def checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``root``, oldest first (temp folders never match the pattern)."""
    if not Path(root).is_dir():
        return []
    found = [(int(m.group(1)), p) for p in Path(root).iterdir() if (m := PATTERN.match(p.name)) and p.is_dir()]
    return sorted((s, p) for s, p in found if (p / "meta.json").exists())


def latest(root: Path) -> Path | None:
    found = checkpoints(root)
    return found[-1][1] if found else None


def write(final: Path, tensors: dict[str, dict[str, torch.Tensor]], state: dict, meta: dict,
          meta_name: str = "meta.json") -> Path:
    """A state folder, whole or not at all: one safetensors file per tensor group, ``state.pt``, and the
    JSON ``meta_name`` (written last; its presence marks the folder finished). Also the shared LoRA warm-up's."""
    with atomic_dir(final) as tmp:
        for group, sd in tensors.items():
            save_file({k: v.detach().cpu().contiguous() for k, v in sd.items()}, str(tmp / f"{group}.safetensors"))
        torch.save(state, tmp / "state.pt")
        write_json(tmp / meta_name, {**meta, "groups": sorted(tensors)})
    return final


def read(path: Path, meta_name: str = "meta.json") -> tuple[dict[str, dict[str, torch.Tensor]], dict, dict]:
    """(tensor groups, state, meta) of a folder from :func:`write`; the state loads with weights_only=True."""
    meta = json.loads((Path(path) / meta_name).read_text())
    tensors = {g: load_file(str(Path(path) / f"{g}.safetensors")) for g in meta["groups"]}
    state = torch.load(Path(path) / "state.pt", map_location="cpu", weights_only=True)
    return tensors, state, meta


def save(root: Path, step: int, tensors: dict[str, dict[str, torch.Tensor]], state: dict, meta: dict,
         total_limit: int | None) -> Path:
    final = write(Path(root) / f"checkpoint-{step}", tensors, state, {**meta, "step": step})
    if total_limit is not None:
        for _, old in checkpoints(root)[:-total_limit]:
            shutil.rmtree(old, ignore_errors=True)
    return final
