"""Image grids: the same prompts and seeds across systems."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from sb2bench._infra.atomic import atomic_file


def image_grid(rows: list[tuple[str, Path]], indices: list[int], out: Path, scale: int = 4,
               label_width: int = 150) -> None:
    """One row per (label, image folder), one column per prompt index; nearest upscaling."""
    tiles = [[Image.open(folder / f"{i:06d}.png").convert("RGB") for i in indices] for _, folder in rows]
    h, w = tiles[0][0].height * scale, tiles[0][0].width * scale
    pad = 4
    canvas = Image.new("RGB", (label_width + len(indices) * (w + pad), len(rows) * (h + pad)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, ((label, _), row) in enumerate(zip(rows, tiles)):
        y = r * (h + pad)
        draw.text((6, y + h // 2 - 6), label, fill="black")
        for c, tile in enumerate(row):
            canvas.paste(tile.resize((w, h), Image.NEAREST), (label_width + c * (w + pad), y))
    with atomic_file(out, "wb") as f:
        canvas.save(f, format="PNG")


def save_figure(fig, prefix: Path, dpi: int = 150) -> None:
    """A matplotlib figure as ``<prefix>.png`` and ``.svg`` (each written atomically), then closed. The SVG
    carries no date and a fixed id salt, so the same data give the same bytes (matplotlib's defaults stamp
    the time and draw random clip-path ids)."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    with mpl.rc_context({"svg.hashsalt": "sb2bench"}):
        for ext in ("png", "svg"):
            with atomic_file(Path(prefix).with_suffix(f".{ext}"), "wb") as f:
                fig.savefig(f, format=ext, dpi=dpi, **({"metadata": {"Date": None}} if ext == "svg" else {}))
    plt.close(fig)
