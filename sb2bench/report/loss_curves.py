"""Training losses against step: one panel per loss column any run logged, one line per run, PNG and SVG.

Optional losses (CLIP, HPS, regulariser) are logged as empty cells by runs without them, so a panel is
drawn only for a column with a value in at least one run."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sb2bench.report.figures import save_figure

LOSSES = {"loss_vsd": "VSD loss (student)", "loss_lora": "LoRA teacher loss (denoising)",
          "loss_clip": "CLIP loss", "loss_hps": "HPS loss", "loss_reg": "regulariser loss"}


def read_log(path: str | Path) -> pd.DataFrame:
    """A run's ``log.csv`` with numeric columns (empty cells as NaN), sorted by step."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"training log {path} does not exist")
    df = pd.read_csv(path)
    if "step" not in df.columns:
        raise ValueError(f"{path}: no 'step' column; is it a training log.csv?")
    return df.apply(pd.to_numeric, errors="coerce").sort_values("step").reset_index(drop=True)


def loss_panels(logs: dict[str, pd.DataFrame]) -> list[str]:
    """Loss columns with at least one value in at least one log, in LOSSES order."""
    return [c for c in LOSSES if any(c in df.columns and df[c].notna().any() for df in logs.values())]


def write_loss_curves(runs: list[dict], prefix: Path, title: str = "Training losses") -> list[str]:
    """``runs``: dicts with name, label and log (path of log.csv). Writes ``<prefix>.png`` and ``.svg``;
    returns the loss columns drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("the loss-curve figure has no runs")
    logs = {r["name"]: read_log(r["log"]) for r in runs}
    panels = loss_panels(logs)
    if not panels:
        raise ValueError(f"no loss column ({', '.join(LOSSES)}) has a value in any of "
                         f"{', '.join(str(r['log']) for r in runs)}")
    prefix = Path(prefix)
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    ncol = min(len(runs), 4)
    legend_in = 0.1 + 0.18 * -(-len(runs) // ncol)  # inches under the panels for the shared legend
    fig, axes = plt.subplots(1, len(panels), figsize=(max(3.6 * len(panels), 7.2), 3.0 + legend_in), squeeze=False)
    for ax, col in zip(axes[0], panels):
        for k, r in enumerate(runs):
            df = logs[r["name"]]
            if col not in df.columns or df[col].isna().all():
                continue
            part = df[["step", col]].dropna()
            ax.plot(part["step"], part[col], color=colours[k % len(colours)], linewidth=1.2,
                    label=r.get("label") or r["name"])
        ax.set_title(LOSSES[col], fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_in / (3.0 + legend_in), 1, 1))
    save_figure(fig, prefix, dpi=150)
    return panels
