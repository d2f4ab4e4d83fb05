"""Train a finished run further instead of starting over (run key ``extend_from``).

A run whose config differs from a finished run's only in a larger ``max_steps`` computes, step for step, what
that run computed, as long as nothing reads ``max_steps`` before the end: the CLIP and HPS weight schedules do
(unless constant or off), so those runs are refused. The finished run's checkpoints are then this run's
checkpoints too. :func:`adopt` copies them (hard links for the tensors) and its ``log.csv`` into the new run's
folder, re-keyed to the new config's hash, and the trainer resumes from the last one as after an interruption.
The copied log keeps the source's final-step row even where the longer run would not log that step.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

from sb2bench._infra.atomic import atomic_dir, atomic_file, write_json
from sb2bench.train import checkpoint
from sb2bench.train.config import TrainConfig


def schedule_reading_max_steps(cfg: TrainConfig) -> str | None:
    """The run key whose weight schedule depends on ``max_steps`` (so a longer run is not a continuation)."""
    if cfg.clip_loss != "none" and cfg.clip_weight != 0 and cfg.clip_schedule != "constant":
        return "clip_schedule"
    if cfg.hps_loss_weight > 0 and cfg.hps_schedule != "constant":
        return "hps_schedule"
    return None


def verify(cfg: TrainConfig, source: Path) -> list[tuple[int, Path]]:
    """The checkpoints of ``source`` (oldest first) once it is shown to be a finished run that ``cfg`` extends."""
    source = Path(source)
    found = checkpoint.checkpoints(source / "checkpoints")
    if not found:
        raise ValueError(f"train config key 'extend_from': no finished checkpoint-* under {source / 'checkpoints'}; "
                         f"name the folder of a run trained with checkpoints")
    key = schedule_reading_max_steps(cfg)
    if key is not None:
        raise ValueError(f"train config key 'extend_from': {key} {getattr(cfg, key)!r} depends on max_steps, so a "
                         f"longer run is not a continuation of {source}; use a constant schedule or train anew")
    last_step = found[-1][0]
    if last_step >= cfg.max_steps:
        raise ValueError(f"train config key 'max_steps' ({cfg.max_steps}) must exceed the {last_step} steps of the "
                         f"run it extends ({source})")
    expected = dataclasses.replace(cfg, max_steps=last_step).semantic_hash()
    for step, path in found:
        meta = json.loads((path / "meta.json").read_text())
        if meta["config_hash"] != expected:
            raise ValueError(f"train config key 'extend_from': {path} was written by a run whose config differs "
                             f"from this one in more than max_steps, or did not finish at step {last_step} (hash "
                             f"{meta['config_hash']}, expected {expected}); extend only a finished run of this config")
    return found


def adopt(cfg: TrainConfig, source: Path, found: list[tuple[int, Path]], out: Path) -> int:
    """Copy the checkpoints ``found`` by :func:`verify` in ``source`` and its log into ``out``; the step the run
    resumes from."""
    source = Path(source)
    new_hash = cfg.semantic_hash()
    for step, path in found:
        with atomic_dir(out / "checkpoints" / path.name) as tmp:
            for f in path.iterdir():
                if f.name != "meta.json":
                    _link_or_copy(f, tmp / f.name)
            meta = json.loads((path / "meta.json").read_text())
            write_json(tmp / "meta.json", {**meta, "config_hash": new_hash, "extended_from": str(source)})
    if (source / "log.csv").exists():
        with atomic_file(out / "log.csv") as f:
            f.write((source / "log.csv").read_text())
    return found[-1][0]


def _link_or_copy(src: Path, dst: Path) -> None:
    """A hard link where the file system allows it (checkpoints are never written in place), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
