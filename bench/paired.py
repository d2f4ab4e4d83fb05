"""Two systems scored on the same prompts and noise, compared metric by metric with the claims' paired test.

For recipe variants the question is often "did this variant end better than that one?", e.g. two
bench/convergence.py runs from the same start, scored under one ``--work``. Each metric's difference
(positive = the first system is better) comes with the claims' paired bootstrap interval over the same resampled
prompts (evaluation.bootstrap of config/default.yaml), its verdict (holds / contradicted / inconclusive) and the
smallest difference the test could have detected. Systems not scored on the same prompts and noise are refused.

  python bench/paired.py --system NAME=WORK/eval/<tag>/metrics.json --than NAME=WORK/eval/<tag>/metrics.json \\
      [--metrics fid recall precision attribute_accuracy clip_score] --out reports/bench/<name>.json

The inputs are metrics.json files with per_image.npz beside them (bench/convergence.py's or the DAG's scoring).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import _toy_runs as toy

from sb2bench._infra.atomic import write_json

METRICS = ("fid", "recall", "precision", "attribute_accuracy", "clip_score")


def compare(system: tuple[str, Path], than: tuple[str, Path], metrics: tuple[str, ...], boot: dict) -> list[dict]:
    """One row per metric: ``system`` minus ``than`` in the metric's better direction, paired over images."""
    return [{"metric": m, "measured": v.measured, "difference": v.difference, "low": v.low, "high": v.high,
             "level": v.level, "interval": v.method, "smallest_detectable": v.detectable, "verdict": v.verdict}
            for m, v in toy.paired_verdicts(system, than, metrics, boot).items()]


def _named(text: str, flag: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name:
        raise SystemExit(f"{flag} {text!r}: expected NAME=PATH/metrics.json")
    if not Path(path).is_file() or not (Path(path).parent / "per_image.npz").is_file():
        raise SystemExit(f"{flag} {name}: {path} or the per_image.npz beside it is missing; score the system first "
                         "(bench/convergence.py or the DAG)")
    return name, Path(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--system", required=True, metavar="NAME=METRICS_JSON", help="the system claimed better")
    ap.add_argument("--than", required=True, metavar="NAME=METRICS_JSON", help="the system it is compared with")
    ap.add_argument("--metrics", nargs="+", default=list(METRICS))
    ap.add_argument("--out", required=True, help="JSON to write (the rows, the command line and the bootstrap)")
    a = ap.parse_args(argv)
    system, than = _named(a.system, "--system"), _named(a.than, "--than")
    boot = toy.default_config()["evaluation"]["bootstrap"]
    rows = compare(system, than, tuple(a.metrics), boot)
    write_json(a.out, {"command": "python bench/paired.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                       "bootstrap": boot, "system": system[0], "than": than[0], "rows": rows})
    for r in rows:
        print(f"{r['metric']}: {r['difference']:+.4g} [{r['low']:+.4g}, {r['high']:+.4g}] {r['verdict']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
