"""Metric tables written from metric JSON files (Markdown + CSV)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from sb2bench.atomic import atomic_file

COLUMNS = {"fid": ("FID ↓", 2), "kid": ("KID ↓", 4), "precision": ("precision ↑", 3), "recall": ("recall ↑", 3),
           "clip_score": ("CLIP ↑", 3), "attribute_accuracy": ("attribute acc. ↑", 3),
           "hps_anime": ("HPS anime ↑", 2), "hps_concept_art": ("HPS concept art ↑", 2),
           "hps_painting": ("HPS painting ↑", 2), "hps_photo": ("HPS photo ↑", 2),
           "hps_average": ("HPS avg ↑", 2)}


def fmt_value(value: float, metric: str, interval: dict | None = None) -> str:
    """``value`` at the metric's precision, with ± half the interval's width when there is one."""
    text = f"{value:.{COLUMNS[metric][1]}f}"
    if interval:
        text += f" ± {(interval['high'] - interval['low']) / 2:.{COLUMNS[metric][1]}f}"
    return text


def read_metrics(files: str | list[str]) -> tuple[dict, dict, int, dict]:
    """Merge a system's metric files: (values, protocol block, n of the main metrics file, bootstrap
    intervals -- empty when none were computed)."""
    files = [files] if isinstance(files, str) else files
    values, protocol, n, intervals = {}, None, None, {}
    for f in files:
        rec = json.loads(Path(f).read_text())
        values.update(rec["metrics"])
        intervals.update(rec.get("intervals") or {})
        protocol = protocol or rec["protocol"]
        n = n if n is not None else rec["n"]
    return values, protocol, n, intervals


def write_eval_table(systems: list[dict], out_md: Path, out_csv: Path, title: str) -> pd.DataFrame:
    """``systems``: dicts with label and metrics (path of a metrics.json)."""
    rows, protocol = [], None
    intervals = []
    for s in systems:
        values, block, n, ci = read_metrics(s["metrics"])
        protocol = protocol or block
        intervals.append(ci)
        rows.append({"system": s["label"], "n": n, **values,
                     **{f"{m}_low": v["low"] for m, v in ci.items()}, **{f"{m}_high": v["high"] for m, v in ci.items()}})
    df = pd.DataFrame(rows)
    with atomic_file(out_csv) as f:
        df.to_csv(f, index=False)
    cols = [c for c in COLUMNS if c in df.columns]
    lines = [f"# {title}", "", f"Protocol `{protocol['name']}` v{protocol['version']}:", ""]
    lines += [f"- {k}: " + (", ".join(f"{kk} = {vv if vv != '' else repr(vv)}" for kk, vv in v.items()) if isinstance(v, dict) else str(v))
              for k, v in protocol.items() if k not in ("name", "version")]
    lines += ["",
             "| system | n | " + " | ".join(COLUMNS[c][0] for c in cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    for r, ci in zip(rows, intervals):
        lines.append(f"| {r['system']} | {r['n']} | " + " | ".join(fmt_value(r[c], c, ci.get(c)) for c in cols) + " |")
    if any(intervals):
        level = next(iter(next(ci for ci in intervals if ci).values()))["level"]
        lines += ["", f"± is half the width of the {level:.0%} percentile-bootstrap interval over images "
                      f"(CSV: `<metric>_low`, `<metric>_high`)."]
    lines += ["", "Every value comes from `results/<world>/metrics/<system>/metrics.json` (with its provenance); "
              f"the same numbers as CSV: `{out_csv.name}`."]
    with atomic_file(out_md) as f:
        f.write("\n".join(lines) + "\n")
    return df
