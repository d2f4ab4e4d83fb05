"""Qualitative grid: the same prompts (columns) and seeds across systems (rows), PNG and SVG with the
numbered prompts listed under the grid, and a Markdown note naming rows and prompts.

Image ``i`` of every system comes from prompt ``i`` and the initial noise drawn for index ``i`` from the
system's seed (``sb2bench.sample.generate``; 0 unless set), so a column compares systems on identical inputs."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image

from sb2bench._infra.atomic import atomic_file
from sb2bench.report.figures import save_figure
from sb2bench.data.prompts import read_prompts

TILE = 128   # pixels per tile: small (toy) images are upscaled by an integer factor, large ones reduced
PAD = 4      # white pixels between tiles
DPI = 100
CHAR_PX = 6      # width of a label character at 8 pt (left margin = longest row label)
MONO_PX = 7      # width of a monospace character at 8 pt (wrapping of the prompt list)
LINE_PX = 14     # height of a line of the prompt list


def _tile(path: Path) -> Image.Image:
    if not path.exists():
        raise FileNotFoundError(f"image {path} does not exist; was the system sampled on this prompt set?")
    img = Image.open(path).convert("RGB")
    if img.width <= TILE and img.height <= TILE:
        k = max(1, TILE // max(img.width, img.height))
        return img.resize((img.width * k, img.height * k), Image.NEAREST)
    scale = TILE / max(img.width, img.height)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)


def grid_array(folders: list[Path], indices: list[int]) -> np.ndarray:
    """The tiles as one RGB array: rows = folders, columns = prompt indices, PAD white pixels between."""
    tiles = [[_tile(Path(folder) / f"{i:06d}.png") for i in indices] for folder in folders]
    h = max(t.height for row in tiles for t in row)
    w = max(t.width for row in tiles for t in row)
    canvas = Image.new("RGB", (len(indices) * (w + PAD) - PAD, len(folders) * (h + PAD) - PAD), "white")
    for r, row in enumerate(tiles):
        for c, t in enumerate(row):
            canvas.paste(t, (c * (w + PAD) + (w - t.width) // 2, r * (h + PAD) + (h - t.height) // 2))
    return np.asarray(canvas)


def write_qualitative(systems: list[dict], prompts_file: Path, indices: list[int], prefix: Path,
                      title: str = "Same prompt and seed per column") -> np.ndarray:
    """``systems``: dicts with name, label, images (folder of ``{index:06d}.png``). Writes ``<prefix>.png``,
    ``.svg`` and ``.md``; returns the grid raster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not systems or not indices:
        raise ValueError("the qualitative grid needs at least one system and one prompt index")
    prompts = {p["index"]: p["caption"] for p in read_prompts(prompts_file)}
    unknown = [i for i in indices if i not in prompts]
    if unknown:
        raise ValueError(f"prompt indices {unknown} are not in {prompts_file}")
    grid = grid_array([Path(s["images"]) for s in systems], indices)
    labels = [s.get("label") or s["name"] for s in systems]
    gh, gw = grid.shape[:2]
    left, top, right = 16 + CHAR_PX * max(map(len, labels)), 50, 10
    W = left + gw + right
    width = max(20, (W - 16) // MONO_PX)  # the numbered prompts, wrapped to the figure's width
    lines = [line for k, i in enumerate(indices)
             for line in textwrap.wrap(f"{k + 1}. {prompts[i]}", width, subsequent_indent="    ")]
    bottom = 20 + LINE_PX * len(lines)
    H = top + gh + bottom
    fig = plt.figure(figsize=(W / DPI, H / DPI), dpi=DPI)
    ax = fig.add_axes((left / W, bottom / H, gw / W, gh / H))
    ax.imshow(grid, interpolation="nearest")
    th, tw = (gh + PAD) / len(systems), (gw + PAD) / len(indices)
    ax.set_yticks([r * th + (th - PAD) / 2 for r in range(len(systems))], labels, fontsize=8)
    ax.set_xticks([c * tw + (tw - PAD) / 2 for c in range(len(indices))], [str(k + 1) for k in range(len(indices))],
                  fontsize=9)
    ax.xaxis.set_ticks_position("top")
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    fig.suptitle(title, y=1 - 8 / H, va="top", fontsize=10)
    fig.text(8 / W, (bottom - 10) / H, "\n".join(lines), va="top", ha="left", fontsize=8, family="monospace",
             linespacing=1.25)
    prefix = Path(prefix)
    save_figure(fig, prefix, dpi=DPI)
    md = [f"# {title}", "", f"![qualitative grid]({prefix.name}.png)", "",
          "Rows (systems, top to bottom):", ""]
    md += [f"{r + 1}. {s.get('label') or s['name']} (`{s['name']}`)" for r, s in enumerate(systems)]
    md += ["", (f"Columns (prompts of `{prompts_file}`, left to right; image `{{index:06d}}.png` of every "
                "system, same initial noise per prompt for systems of the same seed):"), ""]
    md += [f"{k + 1}. [{i}] {prompts[i]}" for k, i in enumerate(indices)]
    with atomic_file(prefix.with_suffix(".md")) as f:
        f.write("\n".join(md) + "\n")
    return grid
