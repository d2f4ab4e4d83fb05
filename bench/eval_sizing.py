"""How the FID interval narrows with the evaluation-set size, unpaired and paired (issue 12 sizing).

Reads a toy results folder in which some systems were sampled on a large evaluation set (e.g. 3000
prompts: ``snakemake --directory D ... results/toy/samples/<system>/images`` with toy.eval_set.n_prompts
raised), takes the first n prompts for each n (the toy set and its noise are prefix-stable: prompt i and
its noise depend on (seed, i) only), and reports for every n the 95 % half-width of each system's FID
(the evaluation's interval method) and of each pair's paired FID difference, plus precision / recall
half-widths. A power-law fit (and a 1/sqrt(n) extrapolation from the largest n) gives the n at which a half-width reaches a target. Per-image sampling
costs come from the Snakemake benchmark TSVs of the same folder. Writes reports/bench/eval_sizing.{json,md}.

    python bench/eval_sizing.py --results D/results/toy --benchmarks D/benchmarks/toy \
        --systems teacher-cfg4.5 turbo-1step --pairs turbo-1step:teacher-cfg4.5 --sizes 500 1000 2000 3000
"""
from __future__ import annotations

import argparse
import csv
import math
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import _toy_runs as toy  # noqa: E402

from sb2bench._infra.atomic import atomic_file, write_json  # noqa: E402
from sb2bench.evaluate.metrics import bootstrap as bs  # noqa: E402
from sb2bench.evaluate.metrics.fid import feature_stats  # noqa: E402
from sb2bench._infra.provenance import package_versions  # noqa: E402


def features(folder: Path, cache: Path) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    f = toy.toy_features(folder, cache)
    return f, time.perf_counter() - t0


def sample_cost(bench: Path, system: str, n_images: int) -> float | None:
    """CPU seconds per image of a system's sampling jobs (sum over its shard TSVs)."""
    files = sorted((bench / "sample" / system).glob("*.tsv"))
    if not files:
        return None
    total = sum(float(next(csv.DictReader(f.open(), delimiter="\t"))["cpu_time"]) for f in files)
    return total / n_images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", required=True, type=Path)
    ap.add_argument("--benchmarks", type=Path, default=None)
    ap.add_argument("--systems", nargs="+", required=True)
    ap.add_argument("--pairs", nargs="*", default=[], help="A:B (paired FID difference A − B)")
    ap.add_argument("--sizes", nargs="+", type=int, required=True)
    ap.add_argument("--n-boot", type=int, default=200)
    ap.add_argument("--target", type=float, default=1.0, help="FID half-width to size for")
    ap.add_argument("--cost", nargs="*", default=[],
                    help="SYSTEM=SECONDS: CPU seconds per image of a system sampled outside Snakemake (no TSV)")
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench" / "eval_sizing"))
    a = ap.parse_args()
    cache = a.results / "cache" / "features"
    ref, ref_t = features(a.results / "data" / "eval" / "reference", cache)
    gen, feat_t = {}, {}
    for s in a.systems:
        gen[s], feat_t[s] = features(a.results / "samples" / s / "images", cache)
    n_max = max(len(g) for g in gen.values())
    sizes = [n for n in a.sizes if n <= min(n_max, len(ref))]
    rows = []
    for n in sizes:
        mu, sigma = feature_stats(ref[:n])
        present = [s for s in a.systems if len(gen[s]) >= n]  # systems sampled on at least n prompts
        stats = {s: bs.fid_stat(gen[s][:n], mu, sigma) for s in present}
        for s in present:
            iv = bs.interval(stats[s], n, a.n_boot)
            ind = bs.precision_recall_indicators(ref[:n], gen[s][:n])
            pr = {k: bs.bootstrap_mean(v, a.n_boot).half_width for k, v in ind.items()}
            rows.append({"n": n, "what": s, "kind": "unpaired", "fid": iv.estimate, "fid_half_width": iv.half_width,
                         "precision_half_width": pr["precision"], "recall_half_width": pr["recall"]})
        for pair in a.pairs:
            x, y = pair.split(":")
            if x not in stats or y not in stats:
                continue
            fx, fy = stats[x], stats[y]
            iv = bs.interval(lambda c: fx(c) - fy(c), n, a.n_boot)
            quad = math.hypot(*(r["fid_half_width"] for r in rows if r["n"] == n and r["what"] in (x, y)))
            rows.append({"n": n, "what": f"{x} − {y}", "kind": "paired", "fid": iv.estimate,
                         "fid_half_width": iv.half_width, "unpaired_quadrature": quad})
        print(f"n={n}: " + ", ".join(f"{r['what']} ±{r['fid_half_width']:.2f}" for r in rows if r["n"] == n), flush=True)
    fits = {}
    for what in dict.fromkeys(r["what"] for r in rows):
        pts = [(r["n"], r["fid_half_width"]) for r in rows if r["what"] == what]
        x, y = np.log([n for n, _ in pts]), np.log([h for _, h in pts])
        slope, icpt = np.polyfit(x, y, 1) if len(pts) > 1 else (-0.5, y[0] + 0.5 * x[0])  # h = C n^slope
        fits[what] = {"exponent": float(slope), "C": float(np.exp(icpt)),
                      "n_for_target": math.ceil(math.exp((math.log(a.target) - icpt) / slope)),
                      "n_for_target_sqrt": math.ceil(pts[-1][0] * (pts[-1][1] / a.target) ** 2), "n_max": pts[-1][0]}
    costs = {s: sample_cost(a.benchmarks, s, len(gen[s])) for s in a.systems} if a.benchmarks else {}
    costs.update({k: float(v) for k, v in (c.split("=") for c in a.cost)})
    rec = {"machine": {"platform": platform.platform(), "python": platform.python_version()},
           "versions": package_versions(), "n_boot": a.n_boot, "method": bs.DEFAULT_METHOD, "target": a.target,
           "rows": rows, "fits": fits, "sample_cpu_seconds_per_image": costs,
           "feature_seconds": {"reference": ref_t, **feat_t}, "n_max": n_max}
    write_json(Path(a.out).with_suffix(".json"), rec)
    lines = ["# Evaluation-set size: FID interval half-width against n", "",
             f"95 % {bs.METHODS[bs.DEFAULT_METHOD]} intervals, {a.n_boot} resamples; the first n prompts of one "
             f"{len(ref)}-prompt toy evaluation set (prefix-stable prompts and noise; systems sampled on "
             + ", ".join(f"{s}: {len(g)}" for s, g in gen.items()) + " prompts). Paired: the FID difference "
             f"with the same resampled images for both systems; 'quadrature' adds the two unpaired half-widths.", "",
             "| n | system / pair | FID | FID half-width | quadrature (unpaired) | precision ± | recall ± |",
             "|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['what']} | {r['fid']:.2f} | {r['fid_half_width']:.2f} | "
                     f"{r.get('unpaired_quadrature', float('nan')):.2f} | {r.get('precision_half_width', float('nan')):.3f} | "
                     f"{r.get('recall_half_width', float('nan')):.3f} |")
    lines += ["", f"n for a half-width of {a.target:g}: from a power law h = C·n^b fitted to the rows above, and "
              f"(more cautious) from the largest n measured scaled by 1/sqrt(n):", ""]
    lines += [f"- {w}: b = {f['exponent']:.2f}, n ≈ {f['n_for_target']} (power law), "
              f"n ≈ {f['n_for_target_sqrt']} (1/sqrt(n) from n = {f['n_max']})" for w, f in fits.items()]
    if costs:
        lines += ["", "Sampling cost (CPU seconds per image, from the benchmark TSVs or --cost): "
                  + ", ".join(f"{s} {c:.4f}" for s, c in costs.items() if c is not None)]
    lines += ["", "Rerun: `python bench/eval_sizing.py " + " ".join(sys.argv[1:]) + "`"]
    with atomic_file(Path(a.out).with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
