"""Does a LoRA student leave its init? Toy Model B (config/default.yaml run `model-b`) at several
``student_lora_lr`` values, each sampled in one step and scored on the toy evaluation set beside the toy turbo
(its init), with the project's own stack (bench/_toy_runs.py).

``null`` is the paper-faithful setting (the LoRA student at ``student_lr``, SBv2 states one lr); the toy
default (config/default.yaml training.defaults.student_lora_lr) is the value this bench chose. A run keeps the
rest of the resolved model-b config (the recipe of the default DAG: SBv1 CFG form, clamped CLIP, TinyVAE).

  python bench/lora_student.py [--lrs null 3e-4] [--steps 200] [--work /tmp/lora_student]

Writes reports/bench/lora_student.{json,md} (merged over earlier invocations: runs are keyed by lr and steps).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _toy_runs as toy
import torch

from sb2bench.sample.generate import SystemSpec
from sb2bench.train import run

REPORT = toy.ROOT / "reports" / "bench" / "lora_student"


def _lr(text: str) -> float | None:
    return None if text == "null" else float(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lrs", nargs="+", type=_lr, default=[None])
    ap.add_argument("--steps", type=int, default=None, help="default: the model-b run's max_steps")
    ap.add_argument("--run", default="model-b", help="a LoRA run of config/default.yaml")
    ap.add_argument("--work", default="/tmp/sb2bench_lora_student")
    ap.add_argument("--checkpoints", action="store_true",
                    help="train nothing: score the checkpoints the runs of these lrs have written so far")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(a.work)
    results: dict = {}
    results["toy turbo (init)"] = {"metrics": toy.score(SystemSpec(name="turbo", pipeline="toy:sd-toy-turbo",
                                                                   kind="onestep"), work, "turbo")}
    for lr in a.lrs:
        over = {"student_lora_lr": lr, **({"max_steps": a.steps} if a.steps else {})}
        cfg = toy.resolved_run(a.run, work, **over)
        if cfg.get("scheme") != "lora":
            raise SystemExit(f"run {a.run!r} is not a LoRA run (scheme {cfg.get('scheme')!r})")
        tag = f"{a.run}-lr{lr}-{cfg['max_steps']}"
        if a.checkpoints:
            for ckpt in sorted((work / "runs" / tag / "checkpoints").glob("checkpoint-*")):
                step = int(ckpt.name.split("-")[1])
                unet = toy.checkpoint_unet(cfg, ckpt, work / "students" / tag / f"step-{step}")
                spec = SystemSpec(name=f"{tag}@{step}", pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(unet),
                                  unet_subfolder=None, steps=1, cfg=1.0, scheduler="ddpm")
                results[f"{tag} (checkpoint {step})"] = {
                    "run": a.run, "student_lora_lr": lr, "student_lr": cfg.get("student_lr"), "steps": step,
                    "metrics": toy.score(spec, work, f"{tag}-step{step}"), "config": cfg}
                print(tag, step, results[f"{tag} (checkpoint {step})"]["metrics"], flush=True)
                _save(results)
            continue
        t0 = time.time()
        student = run(cfg, work / "runs" / tag)
        seconds = time.time() - t0
        metrics = toy.score(toy.student_spec(tag, student, cfg), work, tag)
        results[tag] = {"run": a.run, "student_lora_lr": lr, "student_lr": cfg.get("student_lr"),
                        "steps": cfg["max_steps"], "metrics": metrics, "train_seconds": round(seconds, 1),
                        "config": cfg}
        print(tag, metrics, flush=True)
        _save(results)
    _save(results)
    return 0


def _save(new: dict) -> None:
    """Merge this invocation's rows into the report (a checkpoint-scoring invocation may run beside a training one)."""
    toy.merge_report(REPORT, "lora_student", new, _write_md)


def _write_md(results: dict) -> None:
    init = results["toy turbo (init)"]["metrics"]
    lines = ["# LoRA students that train (toy, CPU, 1 thread)", "",
             "Toy Model B (`model-b` of config/default.yaml, its resolved config but `student_lora_lr` and "
             "`max_steps`) sampled in one step on the toy evaluation set and scored under protocol `toy`, beside "
             "its init. Δ = student − toy turbo. Target (issue 12): |ΔFID| ≥ 2 or |Δ attribute accuracy| ≥ 0.03. "
             "Written by `bench/lora_student.py`; configs and command lines in the JSON beside this file.", "",
             "| system | student_lora_lr | steps | train s | FID | precision | recall | CLIP | attribute acc. | "
             "ΔFID | Δ attr. acc. |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        m = r["metrics"]
        lr = r.get("student_lora_lr", "–")
        lr = f"null (= student_lr {r['student_lr']:g})" if lr is None else (f"{lr:g}" if lr != "–" else lr)
        delta = (f"{m['fid'] - init['fid']:+.2f} | {m['attribute_accuracy'] - init['attribute_accuracy']:+.3f}"
                 if name != "toy turbo (init)" else "– | –")
        lines.append(f"| {name} | {lr} | {r.get('steps', 0)} | {r.get('train_seconds', 0):.0f} | {m['fid']:.2f} | "
                     f"{m['precision']:.3f} | {m['recall']:.3f} | {m['clip_score']:.4f} | "
                     f"{m['attribute_accuracy']:.3f} | {delta} |")
    toy.write_md_with_notes(REPORT, lines)


if __name__ == "__main__":
    sys.exit(main())
