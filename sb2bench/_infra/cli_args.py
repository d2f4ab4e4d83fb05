"""Argument types and flags that several stages' subcommands share, so each is spelled once: a JSON-object
argument, and the runtime flags (batch size, threads, device, dtype) of the commands that run models."""
from __future__ import annotations

import argparse
import json

DEVICES = ["auto", "cpu", "cuda"]
DTYPES = ["float32", "float16", "bfloat16"]


class _Absent:
    """Marks a runtime flag the command does not take (``None`` is a real default: "let the job decide")."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def json_arg(text: str) -> dict:
    """An argparse ``type``: a JSON object given inline (system specs, table entries, report inputs)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def add_runtime_args(parser: argparse.ArgumentParser, *, batch_size: int | None | _Absent = ABSENT,
                     threads: int | None | _Absent = ABSENT, device: str | None | _Absent = ABSENT,
                     dtype: str | None | _Absent = ABSENT, checked: bool = True) -> None:
    """Add ``--batch-size``, ``--threads``, ``--device``, ``--dtype`` (in that order) with the given defaults;
    a flag left ABSENT is not added. ``checked``: restrict device and dtype to DEVICES / DTYPES (argparse
    refuses anything else before a model loads); unchecked, the command resolves the values itself."""
    if batch_size is not ABSENT:
        parser.add_argument("--batch-size", type=int, default=batch_size)
    if threads is not ABSENT:
        parser.add_argument("--threads", type=int, default=threads)
    if device is not ABSENT:
        parser.add_argument("--device", default=device, choices=DEVICES if checked else None)
    if dtype is not ABSENT:
        parser.add_argument("--dtype", default=dtype, choices=DTYPES if checked else None)
