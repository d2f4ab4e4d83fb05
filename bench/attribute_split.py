"""How much of a one-step student's FID gap to the teacher is wrong attributes, and how much is image quality?

The toy world's prompts name attributes (colour, shape, ...) that its classifier reads back per image
(attribute accuracy). For each student, the evaluation prompts are split by that outcome and FID is computed on
each part against the reference images *of the same prompts* (so the part's attribute mix is the same on both
sides), for the student and for the teacher on the same prompts and noise:

- ``all``: every prompt (the usual FID);
- ``both right``: prompts whose attributes both the student and the teacher render right: the gap left there is
  image quality, not text following;
- ``student wrong``: prompts whose attributes the student renders wrong.

Each part reports the student's and the teacher's FID and their ratio, the ratio with the claims' paired
bootstrap (the same resampled prompts for both; evaluation.bootstrap of config/default.yaml). The parts are
chosen by the student's own outcome, so this is a decomposition of the gap, not a causal test. FIDs of parts of
different sizes are not comparable with each other (FID's bias grows as N falls); compare within a part.

  python bench/attribute_split.py --teacher WORK/eval/teacher-cfg4.5/metrics.json \\
      --system swiftbrush-8000=WORK/eval/swiftbrush-8000-step8000/metrics.json [--system ...] \\
      [--out reports/bench/attribute_split]

The inputs are metrics.json files of bench/convergence.py's (or the DAG's) scoring, with per_image.npz beside them.
Writes ``<out>.json`` and ``<out>.md``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import _toy_runs as toy
import numpy as np

from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench.evaluate.metrics import bootstrap as bs
from sb2bench.report.claims import PerImage, check_pairable

def part_masks(student: PerImage, teacher: PerImage) -> dict[str, np.ndarray]:
    s_ok = student.arrays["value_attribute_accuracy"] == 1
    t_ok = teacher.arrays["value_attribute_accuracy"] == 1
    return {"all": np.ones_like(s_ok), "both right": s_ok & t_ok, "student wrong": ~s_ok}


def split(student: PerImage, teacher: PerImage, boot: dict) -> list[dict]:
    """One row per part: sizes, both FIDs against the part's own reference, their ratio with a paired interval."""
    check_pairable("attribute split", {"student": student, "teacher": teacher})
    ref = teacher.arrays["ref_features"]
    n_boot, level = int(boot["n_boot"]), boot.get("level", 0.95)
    method = boot.get("method", bs.DEFAULT_METHOD)
    rows = []
    for part, mask in part_masks(student, teacher).items():
        n = int(mask.sum())
        if n < 3:
            rows.append({"part": part, "n": n})
            continue
        mu, sigma = ref[mask].mean(0), np.cov(ref[mask], rowvar=False)
        fs = bs.fid_stat(student.arrays["gen_features"][mask], mu, sigma)
        ft = bs.fid_stat(teacher.arrays["gen_features"][mask], mu, sigma)
        ratio = bs.interval(lambda c: np.asarray(fs(c)) / np.asarray(ft(c)), n, n_boot, level,
                            boot.get("seed", 0), method)
        ones = np.ones((1, n))
        rows.append({"part": part, "n": n, "fid_student": float(fs(ones)[0]), "fid_teacher": float(ft(ones)[0]),
                     "ratio": ratio.estimate, "ratio_low": ratio.low, "ratio_high": ratio.high,
                     "interval": f"{level:.0%} paired {bs.METHODS[method]}, {n_boot} resamples of {n} prompts"})
    return rows


def write_md(result: dict, path: Path) -> None:
    lines = ["# Where the one-step students' FID gap to the teacher lies: wrong attributes or image quality", "",
             f"Teacher: `{result['teacher']}`. Each part's FIDs are against the reference images of that part's "
             "prompts; ratio = student / teacher with a paired bootstrap interval (same prompts resampled for both). "
             "Parts are chosen by the student's own attribute outcome (a decomposition, not a causal test); FIDs of "
             "parts of different sizes are not comparable with each other. Made by "
             f"`{result['command']}` (bench/attribute_split.py docstring).", "",
             "| student | part | prompts | FID student | FID teacher | ratio [interval] |",
             "|---|---|---:|---:|---:|---|"]
    for name, rows in result["systems"].items():
        for r in rows:
            if "ratio" not in r:
                lines.append(f"| {name} | {r['part']} | {r['n']} | – | – | too few prompts |")
                continue
            lines.append(f"| {name} | {r['part']} | {r['n']} | {r['fid_student']:.2f} | {r['fid_teacher']:.2f} | "
                         f"{r['ratio']:.2f} [{r['ratio_low']:.2f}, {r['ratio_high']:.2f}] |")
    boot = result["bootstrap"]
    lines += ["", f"Intervals: {boot.get('level', 0.95):.0%} paired "
                  f"{bs.METHODS[boot.get('method', bs.DEFAULT_METHOD)]}, {boot['n_boot']} resamples of each part's "
                  "prompts."]
    with atomic_file(path) as f:
        f.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, required=True, help="the teacher's metrics.json (per_image.npz beside)")
    ap.add_argument("--system", action="append", required=True, metavar="NAME=METRICS_JSON")
    ap.add_argument("--out", type=Path, default=toy.ROOT / "reports" / "bench" / "attribute_split")
    a = ap.parse_args(argv)
    systems = {}
    for item in a.system:
        name, sep, path = item.partition("=")
        if not sep or not name:
            ap.error(f"--system {item!r}: expected NAME=METRICS_JSON")
        systems[name] = Path(path)
    loaded = {}
    for name, path in [("teacher", a.teacher), *systems.items()]:
        try:
            loaded[name] = PerImage.load(path)
        except FileNotFoundError as e:
            ap.error(f"{name}: {e}")
        if "ref_features" not in loaded[name].arrays or "value_attribute_accuracy" not in loaded[name].arrays:
            ap.error(f"{name}: {path} has no per-image reference features or attribute accuracy (toy world only)")
    boot = toy.default_config()["evaluation"]["bootstrap"]
    args = argv if argv is not None else sys.argv[1:]
    result = {"command": shlex.join(["python", "bench/attribute_split.py", *args]), "teacher": str(a.teacher),
              "bootstrap": boot,
              "systems": {name: split(loaded[name], loaded["teacher"], boot) for name in systems}}
    write_json(a.out.with_suffix(".json"), result)
    write_md(result, a.out.with_suffix(".md"))
    for name, rows in result["systems"].items():
        for r in rows:
            print(name, r, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
