"""Metrics against λ of a merge sweep (SBv2 Figures 3 and 7): one panel per metric, PNG and SVG,
plus the same numbers as Markdown and CSV."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from sb2bench._infra.atomic import atomic_file
from sb2bench.report.figures import save_figure
from sb2bench.report.tables import COLUMNS, read_metrics

PANELS = ("fid", "clip_score", "precision", "recall")


def sweep_frame(points: list[dict]) -> pd.DataFrame:
    rows = []
    for p in points:
        values, _, n, _ = read_metrics(p["metrics"])
        rows.append({"lambda": float(p["lambda"]), "n": n, **values})
    return pd.DataFrame(rows).sort_values("lambda").reset_index(drop=True)


def write_sweep(label: str, points: list[dict], prefix: Path) -> pd.DataFrame:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = sweep_frame(points)
    prefix = Path(prefix)
    panels = [m for m in PANELS if m in df.columns]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0))
    for ax, metric in zip(axes if len(panels) > 1 else [axes], panels):
        ax.plot(df["lambda"], df[metric], marker="o")
        ax.set_xlabel("λ (weight of A)")
        ax.set_title(COLUMNS[metric][0])
        ax.grid(alpha=0.3)
    fig.suptitle(label)
    fig.tight_layout()
    save_figure(fig, prefix, dpi=120)
    with atomic_file(prefix.with_suffix(".csv")) as f:
        df.to_csv(f, index=False)
    best = df.loc[df["fid"].idxmin()] if "fid" in df.columns else None
    lines = [f"# Merge sweep: {label}", "", "θ = λ·θ_A + (1 − λ)·θ_B (SBv2 Eq. 6), every point sampled and scored "
             "like any system.", "", "| λ | " + " | ".join(COLUMNS[m][0] for m in panels) + " |",
             "|---:|" + "---:|" * len(panels)]
    for _, r in df.iterrows():
        lines.append(f"| {r['lambda']:g} | " + " | ".join(f"{r[m]:.{COLUMNS[m][1]}f}" for m in panels) + " |")
    if best is not None and len(df) >= 3:
        ends = df[df["lambda"].isin([df["lambda"].min(), df["lambda"].max()])]["fid"]
        interior = best["lambda"] not in (df["lambda"].min(), df["lambda"].max())
        lines += ["", f"Best FID at λ = {best['lambda']:g} ({best['fid']:.2f}); "
                  + ("an interior λ beats both ends (" if interior else "no interior λ beats both ends (")
                  + ", ".join(f"{v:.2f}" for v in ends) + ")."]
    with atomic_file(prefix.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
    return df
