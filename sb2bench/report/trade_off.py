"""FID against CLIP score (SBv2's quality-alignment trade-off): the teacher's cfg sweep as a line, one-step
students and merges as labelled markers, bootstrap intervals as error bars; PNG, SVG and the plotted values
as CSV."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from sb2bench._infra.atomic import atomic_file
from sb2bench.report.figures import save_figure
from sb2bench.report.tables import read_metrics

METRICS = ("clip_score", "fid")


def trade_off_frame(curve: list[dict], points: list[dict]) -> pd.DataFrame:
    """One row per system (``curve`` first, in order): label, group, CLIP, FID and their interval bounds
    (NaN where the metric file has no interval). Each system dict: name, label, metrics (file or files)."""
    rows = []
    for group, systems in (("curve", curve), ("point", points)):
        for s in systems:
            values, _, n, intervals = read_metrics(s["metrics"])
            missing = [m for m in METRICS if m not in values]
            if missing:
                raise ValueError(f"{s['metrics']}: no {', '.join(missing)} for system {s['name']!r}")
            level = next((intervals[m]["level"] for m in METRICS if m in intervals), math.nan)
            row = {"system": s["name"], "label": s.get("label") or s["name"], "group": group, "n": n,
                   "interval_level": level}
            for m in METRICS:
                row[m] = float(values[m])
                row[f"{m}_low"] = float(intervals[m]["low"]) if m in intervals else math.nan
                row[f"{m}_high"] = float(intervals[m]["high"]) if m in intervals else math.nan
            rows.append(row)
    if not rows:
        raise ValueError("the trade-off figure has no systems: give a curve or points")
    return pd.DataFrame(rows)


def _errors(df: pd.DataFrame, metric: str):
    """Asymmetric error-bar lengths; a bootstrap interval need not contain the point estimate (FID's bias),
    so lengths are clipped at zero. None when no row has an interval."""
    low, high = df[f"{metric}_low"], df[f"{metric}_high"]
    if low.isna().all():
        return None
    return [(df[metric] - low).clip(lower=0).fillna(0).to_numpy(),
            (high - df[metric]).clip(lower=0).fillna(0).to_numpy()]


def _spread(ys: list[float], gap: float, lo: float = 0.02, hi: float = 0.98) -> list[float]:
    """Move sorted label positions (axes fractions) apart by at least ``gap``, inside [lo, hi]."""
    gap = min(gap, (hi - lo) / max(len(ys) - 1, 1))
    out = [min(max(y, lo), hi) for y in ys]
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    if out and out[-1] > hi:
        out[-1] = hi
        for i in range(len(out) - 2, -1, -1):
            out[i] = min(out[i], out[i + 1] - gap)
    return out


def _callouts(ax, part: pd.DataFrame, colour: str) -> None:
    """Label clustered points in a column right of the axes, each joined to its marker by a thin line:
    one-step systems tend to sit within an interval of each other, where inline labels collide."""
    y0, y1 = ax.get_ylim()
    finite = part[np.isfinite(part["fid"]) & np.isfinite(part["clip_score"])]  # nothing to point at otherwise
    order = finite.sort_values("fid").reset_index(drop=True)
    ys = _spread([(v - y0) / (y1 - y0) for v in order["fid"]], gap=0.045)
    for (_, r), y in zip(order.iterrows(), ys):
        ax.annotate(r["label"], (r["clip_score"], r["fid"]), xytext=(1.03, y), textcoords="axes fraction",
                    ha="left", va="center", fontsize=7, color=colour, annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "lw": 0.4, "color": colour, "alpha": 0.6, "shrinkA": 0,
                                "shrinkB": 2})


def write_trade_off(curve: list[dict], points: list[dict], prefix: Path, title: str = "FID vs CLIP score"
                    ) -> pd.DataFrame:
    """Write ``<prefix>.png``, ``.svg`` and ``.csv``; return the plotted frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = trade_off_frame(curve, points)
    prefix = Path(prefix)
    fig, ax = plt.subplots(figsize=(9.0, 5.0))
    styles = {"curve": {"color": "tab:blue", "marker": "o", "linestyle": "-", "label": "multi-step (curve)"},
              "point": {"color": "tab:red", "marker": "s", "linestyle": "none", "label": "one-step (points)"}}
    for group, style in styles.items():
        part = df[df["group"] == group].reset_index(drop=True)
        if not part.empty:
            ax.errorbar(part["clip_score"], part["fid"], xerr=_errors(part, "clip_score"), yerr=_errors(part, "fid"),
                        capsize=2, elinewidth=0.8, markersize=5, **style)
    for _, r in df[df["group"] == "curve"].iterrows():
        ax.annotate(r["label"], (r["clip_score"], r["fid"]), xytext=(5, 3), textcoords="offset points",
                    fontsize=7, color=styles["curve"]["color"])
    _callouts(ax, df[df["group"] == "point"], styles["point"]["color"])
    ax.set_xlabel("CLIP score ↑")
    ax.set_ylabel("FID ↓")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    levels = df["interval_level"].dropna()
    if len(levels):
        ax.text(0.99, 0.01, f"error bars: {levels.iloc[0]:.0%} percentile-bootstrap intervals over images",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="grey")
    fig.tight_layout()
    save_figure(fig, prefix, dpi=150)
    with atomic_file(prefix.with_suffix(".csv")) as f:
        df.to_csv(f, index=False)
    return df
