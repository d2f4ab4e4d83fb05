"""Toy evidence for the VSD library: does a short CPU VSD run from the toy turbo behave like SBv2?

Runs (same seed, prompts, steps; only the CLIP-loss setting differs):
  vsd               VSD only                                  (SBv2 Table 6 row 1)
  clip-unclamped    + CLIP loss 1 - cos, constant weight      (row 2)
  clip-clamped      + clamped CLIP loss, constant weight      (row 3)
  clip-clamped-lin  + clamped CLIP loss, weight -> 0 linear   (row 4, without LoRA/TinyVAE "efficient")
A *setting* (``--tag``) is the set of VSD overrides shared by its runs (``--set key=value``, or a named
preset with ``--preset``); the CLIP margin and weight are ``--clip-tau`` / ``--clip-weight``.
Each student generates the 500 toy evaluation prompts with the evaluation noise (sampling.generate_shard)
and is scored by the existing stack (evaluate.evaluate + metrics.attributes), next to the toy turbo init
scored the same way. Every run is merged into reports/bench/train_toy_evidence.{json,md} under
"<tag>/<run>" (``--fresh`` starts the report over); run folders go to ``--work`` (default
results/toy/train_evidence/).

  python bench/train_toy_evidence.py --work /tmp/vsd2 --tag T [--preset NAME] [--steps N] [--runs vsd ...]
                                     [--set key=value ...] [--clip-tau X] [--clip-weight W]

The sweep behind reports/bench/train_toy_evidence.md is listed in that report (one command per setting).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import sb2bench  # noqa: F401  (torchvision shim)
import torch

from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench.evaluate.score import evaluate
from sb2bench.data.prompts import write_prompts
from sb2bench._infra.provenance import record
from sb2bench.sample.generate import SystemSpec, generate_shard
from sb2bench.toyworld.prompt_sets import training_prompts, write_eval_set
from sb2bench.train import TOY_OVERRIDES, run

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "results" / "toy" / "train_evidence"  # --work overrides (results/ may be cleaned by the workflow)
REPORT = ROOT / "reports" / "bench" / "train_toy_evidence"
MODELS = {"feature_net": "toy:inception-toy", "clip": "toy:clip-toy"}

# The toy CLIP's cosines live on another scale than ViT-B/32's: the toy turbo scores 0.78 on the
# evaluation set where SD 2.1 scores ~0.33 and SBv2 sets tau = 0.35 just above SD-Turbo's level.
# The toy margin is placed the same way, just above the init's mean training-batch cosine
# (per-sample median 0.745, mean 0.72 over 256 training prompts): --clip-tau (default 0.78). The weight is --clip-weight.
CLIP = {"clip_model": "toy:clip-toy", "clip_decoder": "toy:taesd-toy"}
RUNS = {
    "vsd": {},
    "clip-unclamped": {**CLIP, "clip_loss": "unclamped", "clip_schedule": "constant"},
    "clip-clamped": {**CLIP, "clip_loss": "clamped", "clip_schedule": "constant"},
    "clip-clamped-lin": {**CLIP, "clip_loss": "clamped", "clip_schedule": "linear"},
}
# Named VSD settings (on top of TOY_OVERRIDES), so each setting of the report is one short command.
# Every key that the sweep varied is spelled out, so a preset reproduces its runs whatever TOY_OVERRIDES say.
PRESETS = {
    # the first sweep's setting (TOY_OVERRIDES before the sweep, with lr 5e-6)
    "sweep1": {"student_lr": 5e-6, "teacher_cfg": 4.5, "lora_cfg": 1.0, "lora_updates_per_step": 2,
               "lora_warmup_steps": 0, "lora_loss_weighting": "alpha_bar", "seed": 0},
    # the chosen toy setting (= TOY_OVERRIDES after the sweep): LoRA teacher warmed up and kept up
    "toy": {"student_lr": 5e-6, "teacher_cfg": 4.5, "lora_cfg": 1.0, "lora_updates_per_step": 4,
            "lora_warmup_steps": 50, "lora_loss_weighting": "alpha_bar", "seed": 0},
}


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def score(name: str, spec: SystemSpec, tag: str) -> dict:
    """Generate the 500 evaluation images of ``spec`` and score them with the project's evaluation stack."""
    images = WORK / tag / "eval" / name / "images"
    if not (images / "shard.json").exists():
        generate_shard(spec, _eval_prompts(), images, batch_size=100, threads=1)
    res = evaluate(images, EVAL / "reference", EVAL / "prompts.jsonl", "toy", MODELS, WORK / "feature_cache",
                   WORK / tag / "eval" / name / "metrics.json", "toy:classifier-toy")  # and attributes.json beside it
    return res["metrics"]


def _eval_prompts() -> list[dict]:
    from sb2bench.data.prompts import read_prompts

    return read_prompts(EVAL / "prompts.jsonl")


def main(argv: list[str] | None = None) -> int:
    global WORK, EVAL
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--preset", default=None, choices=list(PRESETS), help="named VSD setting (before --set)")
    ap.add_argument("--set", nargs="*", default=[], help="extra config overrides key=value (JSON values)")
    ap.add_argument("--clip-tau", type=float, default=0.78, help="clamp margin of the CLIP runs (toy scale)")
    ap.add_argument("--clip-weight", type=float, default=0.1, help="(start) weight of the CLIP loss")
    ap.add_argument("--tag", default="default", help="name of this setting (sub-folder of --work)")
    ap.add_argument("--n-train-prompts", type=int, default=2000)
    ap.add_argument("--work", default=None, help="folder for runs, images and caches (default results/toy/...)")
    ap.add_argument("--fresh", action="store_true", help="start the report over instead of merging into it")
    a = ap.parse_args(argv)
    WORK = Path(a.work) if a.work else WORK
    EVAL = WORK / "eval_set"  # own copy (seed 0, n 500 = config/default.yaml's evaluation set)
    torch.set_num_threads(1)
    if not (EVAL / "prompts.jsonl").exists() or not (EVAL / "reference").is_dir():
        write_eval_set(0, 500, EVAL / "prompts.jsonl", EVAL / "reference")
    prompts = WORK / f"train_prompts_{a.n_train_prompts}.jsonl"
    if not prompts.exists():
        write_prompts(prompts, training_prompts(0, a.n_train_prompts))
    extra = dict(kv.split("=", 1) for kv in a.set)
    extra = {k: parse_value(v) for k, v in extra.items()}
    setting = {**PRESETS.get(a.preset, {}), **extra}
    base = {**TOY_OVERRIDES, "teacher": "toy:sd-toy", "student_init": "toy:sd-toy-turbo", "prompts": str(prompts),
            "max_steps": a.steps, "checkpoint_every": max(a.steps, 1), "sample_every": max(a.steps // 4, 1),
            "text_embedding_cache": str(WORK / "text_cache"), **setting}
    clip_args = {"clip_tau": a.clip_tau, "clip_weight": a.clip_weight}
    results = {}  # this invocation's runs; write_report merges them into the report on disk
    if a.fresh:
        REPORT.with_suffix(".json").unlink(missing_ok=True)
    results["init (toy turbo)"] = {"metrics": score("init", SystemSpec(
        name="turbo-init", pipeline="toy:sd-toy-turbo", kind="onestep"), "init"), "train_seconds": 0.0,
        "setting": {}, "tag": "init"}
    write_report(results)
    for name in a.runs:
        cfg = {**base, **RUNS[name], **(clip_args if name != "vsd" else {})}
        t0 = time.time()
        student = run(cfg, WORK / a.tag / name)
        seconds = time.time() - t0
        prov = json.loads((student / "provenance.json").read_text())
        shown = {**setting, **({k: cfg[k] for k in ("clip_tau", "clip_weight")} if name != "vsd" else {})}
        # with ema_decay set the EMA student (what SBv2 ships, unet_ema) is the run's result; raw beside it
        for sub, key in ([("unet_ema", name), ("unet", f"{name} (raw)")] if cfg.get("ema_decay")
                         else [("unet", name)]):
            spec = SystemSpec(name=key, pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(student),
                              unet_subfolder=sub)
            results[f"{a.tag}/{key}"] = {
                "metrics": score(key.replace(" (raw)", "-raw"), spec, a.tag), "tag": a.tag, "run": key,
                "steps": a.steps, "setting": shown, "config": cfg, "argv": sys.argv[1:] if argv is None else argv,
                "train_seconds": prov.get("wall_seconds_this_process", round(seconds, 1)),
                "log_tail": _log_tail(WORK / a.tag / name / "log.csv")}
            print(f"{a.tag}/{key}", results[f"{a.tag}/{key}"]["metrics"], flush=True)
        write_report(results)  # after every run, so a partial sweep still leaves its figures
    return 0


def _log_tail(path: Path) -> list[dict]:
    """Last and first rows of the run's log.csv (x0 std/mean, losses, CLIP cosine)."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[-1:] + rows[:1]


def load_report(fresh: bool) -> dict:
    path = REPORT.with_suffix(".json")
    if fresh or not path.exists():
        return {}
    old = json.loads(path.read_text())
    results = old.get("results", {})
    if old.get("tag"):  # the first sweep's format: one tag, runs keyed by bare name
        results = {(k if k.startswith("init") else f"{old['tag']}/{k}"): dict(v, tag=old["tag"], run=k,
                   steps=old.get("steps"), argv=old.get("argv"),
                   setting={"student_lr": 5e-6, "teacher_cfg": 4.5, "lora_cfg": 1.0, "lora_updates_per_step": 2,
                            **({"clip_tau": 0.85, "clip_weight": 0.1} if k.startswith("clip") else {})})
                   for k, v in results.items()}
    return results


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def write_report(new: dict) -> None:
    """Merge this invocation's runs into the report on disk (under a lock: sweeps may run side by side)."""
    import fcntl

    out_json = REPORT.with_suffix(".json")  # each run records its tag, setting, config and command line
    with open(WORK / "report.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = {**load_report(False), **new}
        write_json(out_json, record(benchmark="train_toy_evidence", results=results))
        _write_md(results, out_json)


def _write_md(results: dict, out_json: Path) -> None:
    lines = ["# Toy VSD evidence (CPU, 1 thread)", "",
             "500 toy evaluation prompts, evaluation noise, protocol `toy` (toy Inception FID, toy CLIP score, "
             "attribute classifier). Written by `bench/train_toy_evidence.py`; every run's full config and "
             "command line are in the JSON beside this file. Settings are overrides of `TOY_OVERRIDES` as they "
             "stood when the run was made (see the JSON's `config`). x̂0 std: student batch at the last / first "
             "logged step.", "",
             "| run | setting | steps | train s | FID ↓ | precision | recall | CLIP ↑ | attribute acc. ↑ | x̂0 std |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    order = sorted(results, key=lambda k: (not k.startswith("init"), list(results).index(k)))
    for name in order:
        r = results[name]
        m, tail = r["metrics"], r.get("log_tail") or []
        std = " / ".join(f"{float(row['x0_std']):.2f}" for row in tail if row.get("x0_std")) or "–"
        setting = ", ".join(f"{k}={_fmt(v)}" for k, v in (r.get("setting") or {}).items()) or "–"
        lines.append(f"| {name} | {setting} | {r.get('steps') or 0} | {r['train_seconds']:.0f} | {m['fid']:.2f} | "
                     f"{m['precision']:.3f} | {m['recall']:.3f} | {m['clip_score']:.4f} | "
                     f"{m['attribute_accuracy']:.3f} | {std} |")
    with atomic_file(out_json.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
        if NOTES.exists():
            f.write("\n" + NOTES.read_text())


NOTES = REPORT.with_suffix(".notes.md")  # hand-written conclusions, appended to the .md


if __name__ == "__main__":
    sys.exit(main())
