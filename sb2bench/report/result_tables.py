"""Config-declared result tables: our measured figures beside the paper's, as Markdown, CSV and LaTeX.

Rows are systems (measured here) or paper-only rows (carried from the paper, never run); columns are
metrics. Where the paper has a value the Markdown shows paper | ours | Δ (real world) or paper | ours
(toy world, where Δ would compare different worlds). Every paper number is labelled as the paper's,
with its source tag, markers and the notes that qualify it; our protocol is footnoted.
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from sb2bench._infra.atomic import atomic_file
from sb2bench.paper.numbers import paper_table
from sb2bench.report.tables import COLUMNS, SPREAD_NOTE, fmt_value, read_system


def _fmt(v: float | None, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.{COLUMNS[metric][1]}f}"


def table_frame(table: dict, metrics_files: dict[str, list[str] | dict]) -> tuple[pd.DataFrame, dict | None]:
    """Long-to-wide frame: one row per table row, ``<metric>_paper`` and ``<metric>_ours`` columns (the mean
    over training seeds where a run has several), with bootstrap ends and the spread over seeds."""
    paper = paper_table(table["paper_table"]) if table.get("paper_table") else None
    rows, protocol = [], None
    for r in table["rows"]:
        ours, ci, sd, n_seeds = {}, {}, {}, None
        if r.get("system"):
            sm = read_system(metrics_files[r["system"]])
            ours, ci, sd, n_seeds = sm.values, sm.intervals, sm.seed_sd, sm.n_seeds
            protocol = protocol or sm.protocol
        prow = paper.row(r["paper_row"]) if paper and r.get("paper_row") else None
        label = r.get("label") or (r.get("system") if r.get("system") else prow.display_label if prow else "?")
        row = {"row": label, "system": r.get("system") or "", "paper_row": r.get("paper_row") or ""}
        for m in table["metrics"]:
            row[f"{m}_paper"] = paper.value(r["paper_row"], m) if prow and m in paper.metrics else None
            row[f"{m}_ours"] = ours.get(m)
            row[f"{m}_ours_low"] = ci.get(m, {}).get("low")
            row[f"{m}_ours_high"] = ci.get(m, {}).get("high")
            row[f"{m}_seed_sd"] = sd.get(m)
            row[f"{m}_n_seeds"] = n_seeds if m in ours else None
        row["ci_level"] = next(iter(ci.values()))["level"] if ci else None
        rows.append(row)
    return pd.DataFrame(rows), protocol


def _markdown(table: dict, df: pd.DataFrame, protocol: dict | None, world: str) -> str:
    paper = paper_table(table["paper_table"]) if table.get("paper_table") else None
    delta = world == "real"
    head, rule = ["row"], ["---"]
    for m in table["metrics"]:
        name = COLUMNS[m][0]
        cols = ([f"{name} paper"] if paper else []) + [f"{name} ours"] + ([f"Δ {name.split()[0]}"] if delta and paper else [])
        head += cols
        rule += ["---:"] * len(cols)
    lines = [f"# {table.get('title') or table['id']}", ""]
    if paper:
        lines += [f"Paper columns: the published numbers of {paper.source} ({paper.title}), labelled as the paper's. "
                  + ("Δ = ours − paper." if delta else
                     "Ours are toy-world measurements: they show the same comparisons at toy scale, and are not "
                     "on the paper's scale, so no Δ is given."), ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "|".join(rule) + "|"]
    for _, r in df.iterrows():
        cells = [r["row"] + (" (paper only)" if not r["system"] else "")]
        for m in table["metrics"]:
            p, o = r[f"{m}_paper"], r[f"{m}_ours"]
            p = None if p is None or (isinstance(p, float) and math.isnan(p)) else p
            o = None if o is None or (isinstance(o, float) and math.isnan(o)) else o
            if paper:
                cells.append(_fmt(p, m))
            lo, hi, sd = r[f"{m}_ours_low"], r[f"{m}_ours_high"], r[f"{m}_seed_sd"]
            has_ci = o is not None and lo is not None and not (isinstance(lo, float) and math.isnan(lo))
            if o is not None and sd is not None and not (isinstance(sd, float) and math.isnan(sd)):
                cells.append(f"{_fmt(o, m)} ± {_fmt(sd, m)} ({int(r[f'{m}_n_seeds'])} seeds)")
            else:
                cells.append(fmt_value(o, m, {"low": lo, "high": hi}) if has_ci else _fmt(o, m))
            if delta and paper:
                cells.append(f"{o - p:+.{COLUMNS[m][1]}f}" if p is not None and o is not None else "–")
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    if paper:
        for _, r in df.iterrows():
            if r["paper_row"]:
                prow = paper.row(r["paper_row"])
                notes += [f"{r['row']}: {n}" for n in prow.notes]
                if prow.caution:
                    notes.append(f"{r['row']} (caution): {prow.caution}")
        notes += list(paper.notes)
    if protocol and df["ci_level"].notna().any():
        notes.append(SPREAD_NOTE.format(level=f"{df['ci_level'].dropna().iloc[0]:.0%}"))
    if protocol:
        notes.append(f"Ours: protocol `{protocol['name']}` v{protocol['version']} (prompts: {protocol['prompts']}; "
                     f"reference: {protocol.get('reference', '')}); every value is read from "
                     f"results/{world}/metrics/<system>/*.json, which record how it was made.")
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines) + "\n"


def _latex(table: dict, df: pd.DataFrame) -> str:
    cols = [c for c in df.columns if c.endswith(("_paper", "_ours")) and df[c].notna().any()]  # no spreads
    esc = lambda s: str(s).replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")  # noqa: E731
    lines = [r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule",
             " & ".join(["Row"] + [esc(c) for c in cols]) + r" \\", r"\midrule"]
    for _, r in df.iterrows():
        vals = [_fmt(None if pd.isna(r[c]) else float(r[c]), c.rsplit("_", 1)[0]) for c in cols]
        lines.append(" & ".join([esc(r["row"])] + [v.replace("–", "--") for v in vals]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def write_result_table(table: dict, metrics_files: dict[str, list[str]], world: str, out_dir: Path) -> pd.DataFrame:
    df, protocol = table_frame(table, metrics_files)
    out_dir = Path(out_dir)
    with atomic_file(out_dir / f"{table['id']}.csv") as f:
        df.to_csv(f, index=False)
    with atomic_file(out_dir / f"{table['id']}.md") as f:
        f.write(_markdown(table, df, protocol, world))
    with atomic_file(out_dir / f"{table['id']}.tex") as f:
        f.write(_latex(table, df))
    return df
