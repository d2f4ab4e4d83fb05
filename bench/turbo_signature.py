"""Can the toy turbo carry SD-Turbo's signature (SBv2 Table 1: sharper but less diverse than its teacher)?

The shipped toy turbo regresses z onto the teacher's ODE sample from z (toy.training.turbo of
config/default.yaml). A candidate here regresses z onto the teacher's sample from ``noise_scale`` · z: below 1,
each target is a lower-temperature, more typical sample of its caption (a truncation trick), a mode-seeking
target in the spirit of SD-Turbo's adversarial distillation at a fraction of its cost. Each candidate is
trained with the hub's own turbo parameters (pairs, steps, lr, seed), sampled in one step on the toy
evaluation set and scored under protocol `toy` beside the teacher (25 steps, cfg 4.5), the teacher sampled
from the same scaled noise (the candidate's target distribution) and the shipped turbo.

Issue 12's signature: precision ≥ the teacher's at cfg 4.5, recall ≤ its recall − 0.10, FID above the teacher's.

  python bench/turbo_signature.py [--noise-scales 0.6 0.8] [--work /tmp/sb2bench_turbo_signature] [--threads 1]

Writes reports/bench/turbo_signature.{json,md} (rows merged over invocations, keyed by system).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _toy_runs as toy
import torch

from sb2bench.models import zoo
from sb2bench.sample import generate
from sb2bench.sample.generate import SystemSpec
from sb2bench.toyworld.train_turbo import train_turbo

REPORT = toy.ROOT / "reports" / "bench" / "turbo_signature"
TEACHER = SystemSpec(name="teacher-cfg4.5", pipeline="toy:sd-toy", steps=25, cfg=4.5)


def candidate(scale: float, params: dict, work: Path) -> tuple[SystemSpec, float | None]:
    """Train (once) the turbo regressed onto the teacher's samples from ``scale`` · z; its one-step system."""
    folder = work / f"turbo-scale{scale:g}"
    seconds = None
    if not (folder / "unet" / "config.json").exists():
        t0 = time.time()
        train_turbo(folder, zoo.toy_hub_dir() / "sd-toy", params, noise_scale=scale)
        seconds = round(time.time() - t0, 1)
    return SystemSpec(name=f"turbo-scale{scale:g}", pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(folder),
                      unet_subfolder="unet", steps=1, cfg=1.0, scheduler="ddpm"), seconds


def teacher_at_scale(scale: float, work: Path) -> dict:
    """The teacher (25 steps, cfg 4.5) from the evaluation noise times ``scale``: the candidate's target."""
    original = generate.initial_noise
    generate.initial_noise = lambda indices, shape, seed: original(indices, shape, seed) * scale
    try:
        return toy.score(SystemSpec(name=f"teacher-cfg4.5-scale{scale:g}", pipeline="toy:sd-toy", steps=25,
                                    cfg=4.5), work, f"teacher-cfg4.5-scale{scale:g}")
    finally:
        generate.initial_noise = original


def signature(m: dict, teacher: dict) -> dict:
    return {"precision_at_least_teacher": m["precision"] >= teacher["precision"],
            "recall_at_least_0.10_below": m["recall"] <= teacher["recall"] - 0.10,
            "fid_above_teacher": m["fid"] > teacher["fid"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise-scales", nargs="+", type=float, default=[0.6, 0.8])
    ap.add_argument("--work", default="/tmp/sb2bench_turbo_signature")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-target", action="store_true", help="do not score the teacher from the scaled noise")
    a = ap.parse_args(argv)
    if any(not 0 < s <= 1 for s in a.noise_scales):
        ap.error(f"--noise-scales {a.noise_scales}: each must be in (0, 1]")
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    params = toy.default_config()["toy"]["training"]["turbo"]
    rows = {"teacher, 25 steps, cfg 4.5": {"metrics": toy.score(TEACHER, work, "teacher-cfg4.5")},
            "toy turbo (shipped, scale 1)": {"metrics": toy.score(
                SystemSpec(name="turbo", pipeline="toy:sd-toy-turbo", kind="onestep"), work, "turbo")}}
    teacher = rows["teacher, 25 steps, cfg 4.5"]["metrics"]
    for scale in a.noise_scales:
        if not a.skip_target:
            rows[f"teacher from {scale:g} · z (target)"] = {"metrics": teacher_at_scale(scale, work),
                                                           "noise_scale": scale}
        spec, seconds = candidate(scale, params, work)
        m = toy.score(spec, work, spec.name)
        rows[f"turbo regressed on {scale:g} · z"] = {"metrics": m, "noise_scale": scale, "train_seconds": seconds,
                                                    "signature": signature(m, teacher), "params": params}
        print(scale, {k: round(v, 4) for k, v in m.items() if isinstance(v, float)}, flush=True)
        _save(rows)
    rows["toy turbo (shipped, scale 1)"]["signature"] = signature(rows["toy turbo (shipped, scale 1)"]["metrics"],
                                                                  teacher)
    _save(rows)
    return 0


def _save(new: dict) -> None:
    toy.merge_report(REPORT, "turbo_signature", new, _write_md)


def _write_md(rows: dict) -> None:
    teacher = rows["teacher, 25 steps, cfg 4.5"]["metrics"]
    lines = ["# A toy turbo with SD-Turbo's signature? (CPU)", "",
             "One-step candidates regressed onto the teacher's samples from a scaled start noise, beside the teacher "
             "and the shipped turbo, on the toy evaluation set (protocol `toy`). Signature (issue 12): precision ≥ "
             f"the teacher's ({teacher['precision']:.3f}), recall ≤ its recall − 0.10 "
             f"({teacher['recall'] - 0.10:.3f}), FID above its {teacher['fid']:.2f}. Written by "
             "`bench/turbo_signature.py`; parameters and command lines in the JSON beside this file.", "",
             "| system | FID ↓ | precision | recall | CLIP | attribute acc. | train s | signature |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in rows.items():
        m, sig = r["metrics"], r.get("signature")
        verdict = "–" if sig is None else ("met" if all(sig.values()) else
                                           "missed: " + ", ".join(k for k, ok in sig.items() if not ok))
        secs = r.get("train_seconds")
        lines.append(f"| {name} | {m['fid']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['clip_score']:.4f} | "
                     f"{m['attribute_accuracy']:.3f} | {'–' if secs is None else f'{secs:.0f}'} | {verdict} |")
    toy.write_md_with_notes(REPORT, lines)


if __name__ == "__main__":
    sys.exit(main())
