"""Training losses against step: one panel per loss column any run logged, one line per run, PNG and SVG.

Optional losses (CLIP, HPS, regulariser) are logged as empty cells by runs without them, so a panel is
drawn only for a column with a value in at least one run. Runs that logged the drift diagnostics
(``diagnostics_every``, sb2bench/train/diagnostics.py) add two rows, one panel per t bucket: the cosine of the
VSD update with the pure guidance term, and the LoRA teacher's denoising MSE over the frozen teacher's on
fresh student samples (below 1: the fake score tracks the student)."""
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


def diagnostic_buckets(logs: dict[str, pd.DataFrame]) -> list[str]:
    """t-bucket names (``t20_400`` ...) of the diagnostics columns with a value in at least one log."""
    seen: dict[str, None] = {}
    for df in logs.values():
        for col in df.columns:
            if col.startswith("cos_guidance_") and df[col].notna().any():
                seen.setdefault(col[len("cos_guidance_"):])
    return list(seen)


def _column(df: pd.DataFrame, col: str) -> pd.DataFrame:
    """(step, value) rows of ``col`` where it was logged (none when the log lacks the column)."""
    if col not in df.columns:
        return pd.DataFrame({"step": [], "value": []})
    part = df[["step", col]].dropna()
    return pd.DataFrame({"step": part["step"], "value": part[col]})


def _ratio(df: pd.DataFrame, bucket: str) -> pd.DataFrame:
    """(step, mse_lora / mse_frozen) of ``bucket`` where both were logged."""
    a, b = f"mse_lora_{bucket}", f"mse_frozen_{bucket}"
    if a not in df.columns or b not in df.columns:
        return _column(df, "")
    part = df[["step", a, b]].dropna()
    return pd.DataFrame({"step": part["step"], "value": part[a] / part[b]})


def loss_panels(logs: dict[str, pd.DataFrame]) -> list[str]:
    """Loss columns with at least one value in at least one log, in LOSSES order."""
    return [c for c in LOSSES if any(c in df.columns and df[c].notna().any() for df in logs.values())]


def write_loss_curves(runs: list[dict], prefix: Path, title: str = "Training losses") -> list[str]:
    """``runs``: dicts with name, label and log (path of log.csv). Writes ``<prefix>.png`` and ``.svg``;
    returns the loss columns drawn, then cos_guidance_<bucket> and mse_ratio_<bucket> (diagnostics, if logged)."""
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
    buckets = diagnostic_buckets(logs)
    # a row of panels: (title, the (step, value) series of a log, reference line or None)
    rows = [[(LOSSES[c], lambda df, c=c: _column(df, c), None) for c in panels]]
    if buckets:
        rows.append([(f"cos(VSD update, guidance), {_bucket_label(b)}",
                      lambda df, b=b: _column(df, f"cos_guidance_{b}"), None) for b in buckets])
        rows.append([(f"MSE LoRA / MSE frozen, {_bucket_label(b)}", lambda df, b=b: _ratio(df, b), 1.0)
                     for b in buckets])
    prefix = Path(prefix)
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    ncol = min(len(runs), 4)
    legend_in = 0.1 + 0.18 * -(-len(runs) // ncol)  # inches under the panels for the shared legend
    width = max(len(r) for r in rows)
    height = 3.0 * len(rows)
    fig, axes = plt.subplots(len(rows), width, figsize=(max(3.6 * width, 7.2), height + legend_in), squeeze=False)
    for i, row in enumerate(rows):
        for ax in axes[i][len(row):]:
            ax.axis("off")
        for ax, (panel_title, series, ref) in zip(axes[i], row):
            for k, r in enumerate(runs):
                part = series(logs[r["name"]])
                if part.empty:
                    continue
                ax.plot(part["step"], part["value"], color=colours[k % len(colours)], linewidth=1.2,
                        marker="." if i else None, label=r.get("label") or r["name"])
            if ref is not None:
                ax.axhline(ref, color="grey", linewidth=0.8, linestyle="--")
            ax.set_title(panel_title, fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
    handles = {}
    for ax in axes.flat:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, legend_in / (height + legend_in), 1, 1))
    save_figure(fig, prefix, dpi=150)
    return panels + [f"{q}_{b}" for q in ("cos_guidance", "mse_ratio") for b in buckets]


def _bucket_label(bucket: str) -> str:
    """t20_400 -> t ∈ [20, 400); the last bucket ends at 980 inclusive."""
    lo, hi = bucket[1:].split("_")
    return f"t ∈ [{lo}, {hi}]" if hi == "980" else f"t ∈ [{lo}, {hi})"
