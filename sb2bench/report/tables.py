"""Metric tables written from metric JSON files (Markdown + CSV)."""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sb2bench._infra.atomic import atomic_file
from sb2bench.evaluate.metrics.bootstrap import METHODS

COLUMNS = {"fid": ("FID ↓", 2), "kid": ("KID ↓", 4), "precision": ("precision ↑", 3), "recall": ("recall ↑", 3),
           "clip_score": ("CLIP ↑", 3), "attribute_accuracy": ("attribute acc. ↑", 3),
           "hps_anime": ("HPS anime ↑", 2), "hps_concept_art": ("HPS concept art ↑", 2),
           "hps_painting": ("HPS painting ↑", 2), "hps_photo": ("HPS photo ↑", 2),
           "hps_average": ("HPS avg ↑", 2)}


def fmt_value(value: float, metric: str, interval: dict | None = None) -> str:
    """``value`` at the metric's precision, then its interval as [low, high] when there is one (an
    interval need not be symmetric about the point, so no ±)."""
    digits = COLUMNS[metric][1]
    text = f"{value:.{digits}f}"
    if interval:
        text += f" [{interval['low']:.{digits}f}, {interval['high']:.{digits}f}]"
    return text


def ci_method(interval: dict) -> str:
    """The interval's method key; metric files written before methods were recorded used the percentile."""
    return interval.get("method", "percentile")


def interval_note(level: float, method: str) -> str:
    """How a table's [low, high] was made, for its caption."""
    return (f"[low, high] is the {level:.0%} {METHODS[method]} interval over images (docs/evaluation.md); CSV: "
            f"`<metric>_low`, `<metric>_high`, `ci_level`, `ci_method`.")


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


@dataclass
class SystemMetrics:
    """A system's figures: one training seed's, or the mean over several seeds' students.

    ``values`` are the means over seeds (the single run's values without seeds); ``intervals`` are the
    bootstrap intervals over images of the first seed's run; ``seed_sd`` and ``seed_values`` give the
    spread over training seeds (empty with one seed).
    """
    values: dict
    protocol: dict
    n: int
    intervals: dict
    seed_values: dict = field(default_factory=dict)

    @property
    def n_seeds(self) -> int:
        return max((len(v) for v in self.seed_values.values()), default=1)

    @property
    def seed_sd(self) -> dict:
        return {m: statistics.stdev(v) for m, v in self.seed_values.items() if len(v) > 1}


def read_system(source: str | list[str] | dict) -> SystemMetrics:
    """``source``: a system's metric files, or ``{"seeds": [files of seed 1, files of seed 2, ...]}`` for a
    training run repeated over seeds (``sb2bench.plan.runs.seed_groups``)."""
    if not isinstance(source, dict):
        values, protocol, n, intervals = read_metrics(source)
        return SystemMetrics(values, protocol, n, intervals)
    runs = [read_metrics(files) for files in source["seeds"]]
    first_values, protocol, n, intervals = runs[0]
    seed_values = {m: [r[0][m] for r in runs if m in r[0]] for m in first_values}
    values = {m: statistics.fmean(v) for m, v in seed_values.items()}
    return SystemMetrics(values, protocol, n, intervals, seed_values if len(runs) > 1 else {})


def fmt_system(sm: SystemMetrics, metric: str) -> str:
    """Mean ± s.d. over seeds when there are several, else the value and its bootstrap interval."""
    if metric not in sm.values:
        return "–"
    if metric in sm.seed_sd:
        return f"{fmt_value(sm.values[metric], metric)} ± {sm.seed_sd[metric]:.{COLUMNS[metric][1]}f} (s.d., {sm.n_seeds} seeds)"
    return fmt_value(sm.values[metric], metric, sm.intervals.get(metric))


SPREAD_NOTE = ("[low, high] is the {level} {method} interval over images (docs/evaluation.md; CSV "
               "`<metric>_ours_low`, `<metric>_ours_high`, `ci_level`, `ci_method`); rows marked \"(k seeds)\" "
               "show the mean ± standard deviation over k training seeds instead (CSV: `<metric>_seed_sd`, "
               "`<metric>_n_seeds`; the bootstrap interval there is the first seed's).")


def write_eval_table(systems: list[dict], out_md: Path, out_csv: Path, title: str) -> pd.DataFrame:
    """``systems``: dicts with label and metrics (path of a metrics.json)."""
    rows, protocol = [], None
    intervals = []
    for s in systems:
        values, block, n, ci = read_metrics(s["metrics"])
        protocol = protocol or block
        intervals.append(ci)
        first = next(iter(ci.values()), None)
        rows.append({"system": s["label"], "n": n, **values,
                     **{f"{m}_low": v["low"] for m, v in ci.items()}, **{f"{m}_high": v["high"] for m, v in ci.items()},
                     "ci_level": first["level"] if first else None, "ci_method": ci_method(first) if first else None})
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
        cells = [fmt_value(r[c], c, ci.get(c)) if c in r else "–" for c in cols]  # HPS: only some systems
        lines.append(f"| {r['system']} | {r['n']} | " + " | ".join(cells) + " |")
    if any(intervals):
        first = next(iter(next(ci for ci in intervals if ci).values()))
        lines += ["", interval_note(first["level"], ci_method(first))]
    lines += ["", "Every value comes from `results/<world>/metrics/<system>/metrics.json` (with its provenance); "
              "rows marked \"whole set\" from `.../<system>/whole_set/metrics.json`, the same system scored on every "
              "prompt of the set (`evaluation.subset`), so their n differs and their FID is lower by FID's bias; "
              f"the same numbers as CSV: `{out_csv.name}`."]
    with atomic_file(out_md) as f:
        f.write("\n".join(lines) + "\n")
    return df
