"""Fixtures of the training tests."""
from collections.abc import Callable
from pathlib import Path

import pytest

from sb2bench import cli


@pytest.fixture()
def train_here(capsys, monkeypatch) -> Callable[[Path, Path], tuple[int, str, str]]:
    """``train_here(cfg_file, out)`` -> (exit code, stdout, stderr) of ``sb2bench train --processes 1 --cpu``
    through the CLI entry in this interpreter: one process needs no launcher, and a fresh interpreter would cost
    a torch import per run."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # what --cpu sets; restored after the test

    def train(cfg_file: Path, out: Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.run(["train", "--processes", "1", "--cpu", "--config", str(cfg_file), "--out", str(out)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return train
