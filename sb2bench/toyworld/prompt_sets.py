"""Toy prompt sets: the training-prompt stream and the evaluation set ("toy COCO-30K").

Both are JSON Lines prompt files whose rows also carry the ground-truth attributes and
which of them the caption names. The evaluation set comes with reference images rendered
from the very scenes its captions describe, as COCO's captions describe its images.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from sb2bench._infra.atomic import atomic_dir
from sb2bench.data.prompts import write_prompts
from sb2bench.toyworld import world

# Streams are separated by seed offsets so training prompts never coincide with evaluation items.
TRAIN_STREAM, EVAL_STREAM = 1_000, 2_000


def prompt_rows(scenes: list[world.Scene], start: int = 0) -> list[dict]:
    return [{"index": start + i, "caption": s.caption, "attributes": dict(s.attributes),
             "mentioned": list(s.mentioned)} for i, s in enumerate(scenes)]


def training_prompts(seed: int, n: int, start: int = 0) -> list[dict]:
    return prompt_rows(world.make_scenes(TRAIN_STREAM + seed, n, start), start)


def write_eval_set(seed: int, n: int, prompts_file: Path, reference_dir: Path) -> None:
    """Write ``n`` evaluation prompts and their reference renders ``{index:06d}.png``."""
    if n < 1:
        raise ValueError(f"the evaluation set needs at least one prompt (got n={n})")
    scenes = world.make_scenes(EVAL_STREAM + seed, n)
    with atomic_dir(reference_dir) as tmp:
        for i, scene in enumerate(scenes):
            Image.fromarray(world.to_uint8(world.render(scene))).save(tmp / f"{i:06d}.png")
    write_prompts(prompts_file, prompt_rows(scenes))
