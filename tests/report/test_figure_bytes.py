"""Figures are deterministic: the same data give the same PNG and SVG bytes (no timestamp, fixed ids)."""
from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sb2bench.report.figures import save_figure  # noqa: E402


def _draw(prefix: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [3, 1, 2], label="a")
    ax.legend()
    save_figure(fig, prefix)


def test_same_data_same_bytes(tmp_path):
    _draw(tmp_path / "one")
    time.sleep(1.1)  # a date stamp would differ now
    _draw(tmp_path / "two")
    for ext in ("png", "svg"):
        assert (tmp_path / f"one.{ext}").read_bytes() == (tmp_path / f"two.{ext}").read_bytes(), ext
    assert b"<dc:date>" not in (tmp_path / "one.svg").read_bytes()
