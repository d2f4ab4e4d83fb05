"""Prompt sets: JSON Lines files with one ``{"index", "caption", ...}`` object per line."""
from __future__ import annotations

import json
from pathlib import Path

from sb2bench._infra.atomic import atomic_file


class PromptFileError(ValueError):
    pass


def read_prompts(path: str | Path) -> list[dict]:
    """Read and check a prompt file: non-empty, every line has an int index and a caption."""
    path = Path(path)
    if not path.exists():
        raise PromptFileError(f"prompt file {path} does not exist")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PromptFileError(f"{path}:{n}: not JSON ({exc})") from exc
        if not isinstance(row.get("index"), int) or not isinstance(row.get("caption"), str):
            raise PromptFileError(f"{path}:{n}: each line needs an integer 'index' and a string 'caption'")
        rows.append(row)
    if not rows:
        raise PromptFileError(f"prompt file {path} is empty: it needs at least one "
                              f'{{"index": 0, "caption": "..."}} line')
    indices = [r["index"] for r in rows]
    if len(set(indices)) != len(indices):
        raise PromptFileError(f"prompt file {path} repeats prompt indices")
    return rows


def write_prompts(path: str | Path, rows: list[dict]) -> None:
    with atomic_file(path) as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True) + "\n")
