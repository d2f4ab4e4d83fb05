"""The paper's claims checked on our measurements: a verdict per claim, with the numbers and the noise it rests on.

A claim compares measured figures only; whether it "holds" depends on the noise we can measure. With
several training seeds per side the noise is the standard error of the difference of seed means; otherwise
it is the bootstrap half-widths over images of the two figures, added in quadrature. A difference in the
paper's direction larger than twice that noise holds; a smaller one is "same direction, within noise";
a difference against the paper's direction is "not reproduced" (within noise) or "contradicted" (beyond it).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from sb2bench.report.tables import COLUMNS, SystemMetrics, fmt_system, fmt_value, read_system

Z = 2.0  # noise multiples a difference must exceed to count


def lower_is_better(metric: str) -> bool:
    return "↓" in COLUMNS[metric][0]


@dataclass
class Verdict:
    claim: dict
    measured: str       # the figures compared, as text
    difference: float   # positive = in the paper's direction
    noise: float        # one standard error (seeds) or combined bootstrap half-width (images)
    noise_kind: str
    verdict: str


def _noise(a: SystemMetrics, b: SystemMetrics, metric: str) -> tuple[float, str]:
    if metric in a.seed_sd and metric in b.seed_sd:
        return math.sqrt(a.seed_sd[metric] ** 2 / a.n_seeds + b.seed_sd[metric] ** 2 / b.n_seeds), \
            f"s.e. over {a.n_seeds} and {b.n_seeds} training seeds"
    half = [(m.intervals[metric]["high"] - m.intervals[metric]["low"]) / 2 for m in (a, b) if metric in m.intervals]
    if len(half) == 2:
        return math.sqrt(half[0] ** 2 + half[1] ** 2), "bootstrap half-widths over images, in quadrature"
    return 0.0, "no spread measured"


def _verdict(diff: float, noise: float) -> str:
    if diff > Z * noise:
        return "holds"
    if diff > 0:
        return "same direction, within noise"
    if diff >= -Z * noise:
        return "not reproduced (opposite direction, within noise)"
    return "contradicted"


def _signed(metric: str, better: float, worse: float) -> float:
    return worse - better if lower_is_better(metric) else better - worse


def check_better(claim: dict, sources: dict) -> Verdict:
    """``system`` beats ``than`` on ``metric``."""
    m = claim["metric"]
    a, b = read_system(sources[claim["system"]]), read_system(sources[claim["than"]])
    diff = _signed(m, a.values[m], b.values[m])
    noise, kind = _noise(a, b, m)
    text = f"{claim['system']} {fmt_system(a, m)} vs {claim['than']} {fmt_system(b, m)}"
    return Verdict(claim, text, diff, noise, kind, _verdict(diff, noise))


def check_interior_best(claim: dict, sweep: list[dict]) -> Verdict:
    """The best interior λ of a merge sweep beats both ends (``sweep``: [{lambda, source}], ends included)."""
    m = claim["metric"]
    points = sorted(((float(p["lambda"]), read_system(p["source"])) for p in sweep), key=lambda p: p[0])
    ends = [p for p in points if p[0] in (0.0, 1.0)]
    inner = [p for p in points if 0.0 < p[0] < 1.0]
    if len(ends) != 2 or not inner:
        raise ValueError(f"claim {claim['id']}: merge {claim['merge']!r} needs λ = 0, λ = 1 and an interior λ")
    key = (lambda p: p[1].values[m]) if lower_is_better(m) else (lambda p: -p[1].values[m])
    best_inner, best_end = min(inner, key=key), min(ends, key=key)
    diff = _signed(m, best_inner[1].values[m], best_end[1].values[m])
    noise, kind = _noise(best_inner[1], best_end[1], m)
    text = (f"best interior λ = {best_inner[0]:g}: {fmt_system(best_inner[1], m)}; better end λ = {best_end[0]:g}: "
            f"{fmt_system(best_end[1], m)}; all: " + ", ".join(f"λ {lam:g} {fmt_value(sm.values[m], m)}" for lam, sm in points))
    return Verdict(claim, text, diff, noise, kind, _verdict(diff, noise))


def check_claims(claims: list[dict], sources: dict, sweeps: dict) -> list[Verdict]:
    """``sources``: system -> metric source (``read_system``); ``sweeps``: merge -> its points."""
    out = []
    for c in claims:
        out.append(check_interior_best(c, sweeps[c["merge"]]) if c["kind"] == "interior_best"
                   else check_better(c, sources))
    return out
