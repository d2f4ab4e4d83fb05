"""Convergence probe of the toy VSD recipe: FID, precision, recall and attribute accuracy against training step,
for SwiftBrush (teacher init, run `swiftbrush`) and Turbo-init VSD (run `turbo-init`) of config/default.yaml,
with more steps than the default DAG gives them.

Each run trains once with a checkpoint every ``--every`` steps (resumable: rerun the same command after an
interruption); every checkpoint's student is then sampled in one step on the toy evaluation set and scored
under protocol `toy` (bench/_toy_runs.py), as are the inits (step 0), the teacher at 25 steps and cfg 4.5
(the distribution VSD distils) and the toy turbo. ``--score-only`` scores the checkpoints that exist.

  python bench/convergence.py [--inits teacher turbo] [--steps 200] [--every 50] [--work /tmp/convergence]

``--init-unet FOLDER`` starts Turbo-init VSD from another one-step UNet (a folder with ``unet/``, e.g. a
bench/turbo_signature.py candidate) instead of the hub's turbo: its step-0 row and the paired gains are then
that UNet's, and every cache name carries a key of its weights.

Writes reports/toy/convergence.csv (one row per init and step, reference rows with step empty; each checkpoint's
FID and recall gain over its init with the claims' paired bootstrap interval and verdict) and
reports/toy/fig_convergence.{png,svg}; rows of earlier invocations for other inits are kept. ``--diagnostics``
also writes each run's drift diagnostics (the rows of its log.csv that carry them: step, x̂0 std and, per t bucket,
the LoRA and frozen teachers' ε-MSE and the cosine with the guidance term; docs/recipe.md) to
``<out>/diagnostics_<run>.csv``. ``--set extend_from=<work>/runs/swiftbrush-8000`` trains a finished run further
(run key extend_from: a ``--steps 16000`` run adopts its checkpoints and resumes at 8,000; every checkpoint is
scored, and the final row's train_seconds are the extension's). ``--trend-from STEP`` asks whether FID has levelled
off: ``<out>/trend_<run>.json`` holds its least-squares slope per 1,000 steps over the checkpoints from STEP on (95 %
t interval) and the last checkpoint's paired FID and recall gain over the one at STEP.
"""
from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import _toy_runs as toy
import torch
import yaml

from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.hashing import sha256_json, sha256_tree
from sb2bench.report.figures import save_figure
from sb2bench.sample.generate import SystemSpec
from sb2bench.train import run
from sb2bench.train.config import NON_SEMANTIC
from sb2bench.train.diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS

OUT = toy.ROOT / "reports" / "toy"
RUNS = {"teacher": "swiftbrush", "turbo": "turbo-init"}
INIT_PIPELINES = {"teacher": "toy:sd-toy", "turbo": "toy:sd-toy-turbo"}
PAIRED = ("fid", "recall")  # "VSD improves its init" (issue 12): each checkpoint against its init, paired
COLUMNS = ("system", "init", "step", "train_seconds", *toy.METRICS,
           *(f"{m}_{k}" for m in PAIRED for k in ("gain", "gain_low", "gain_high", "verdict")))


def write_diagnostics(log_csv: Path, path: Path) -> int:
    """The drift diagnostics of a run's ``log.csv`` (only the steps that logged them) as their own CSV; row count."""
    if not log_csv.is_file():
        raise SystemExit(f"--diagnostics: {log_csv} does not exist; train the run first (drop --score-only)")
    columns = ("step", "x0_std", *DIAGNOSTIC_COLUMNS)
    with open(log_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r.get(c) not in (None, "") for c in DIAGNOSTIC_COLUMNS)]
    with atomic_file(path) as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows([r[c] for c in columns] for r in rows)
    return len(rows)


def run_tag_of(name: str, steps: int, overrides: dict) -> str:
    """The folder name of a probe's run under ``<work>/runs`` and ``<work>/students``: the run and its length, plus
    a key of the semantic ``--set`` overrides, so recipe variants sharing one ``--work`` (and its evaluation caches)
    never resume or score each other's checkpoints; non-semantic keys (threads, extend_from, ...) leave it as is."""
    semantic = {k: v for k, v in overrides.items() if k not in NON_SEMANTIC}
    return f"{name}-{steps}" + (f"-{sha256_json(semantic)[:8]}" if semantic else "")


def probe(init: str, steps: int, every: int, work: Path, score_only: bool, overrides: dict,
          init_unet: Path | None = None, diagnostics_out: Path | None = None,
          trend_from: int | None = None, out: Path | None = None) -> list[dict]:
    name = RUNS[init]
    init_spec = SystemSpec(name=f"{init}-init", pipeline=INIT_PIPELINES[init], kind="onestep")
    init_tag, run_tag, label = f"{init}-init", run_tag_of(name, steps, overrides), name
    if init_unet is not None:  # another one-step UNet as the init: caches keyed by its weights
        key = sha256_tree(init_unet / "unet")[:12]
        overrides = {**overrides, "student_init": str(init_unet), "student_init_subfolder": "unet"}
        init_spec = SystemSpec(name=f"{init}-init-{key}", pipeline=INIT_PIPELINES[init], kind="onestep",
                               unet=str(init_unet), unet_subfolder="unet", steps=1, cfg=1.0, scheduler="ddpm")
        init_tag, run_tag = f"{init}-init-{key}", f"{run_tag}-from-{key}"
        label = f"{name} from {init_unet.name}"
    cfg = toy.resolved_run(name, work, **{"max_steps": steps, "checkpoint_every": every,
                                          "checkpoint_total_limit": None, "seed": 0, **overrides})
    if cfg.get("scheme", "full") != "full":
        raise SystemExit(f"run {name!r} is a LoRA run; this probe exports full-student checkpoints")
    run_dir = work / "runs" / run_tag
    boot = toy.default_config()["evaluation"]["bootstrap"]
    seconds = None
    if not score_only:
        t0 = time.time()
        run(cfg, run_dir)
        seconds = round(time.time() - t0, 1)
    if diagnostics_out is not None:
        diagnostics_out.mkdir(parents=True, exist_ok=True)
        path = diagnostics_out / f"diagnostics_{run_tag}.csv"
        print(f"wrote {write_diagnostics(run_dir / 'log.csv', path)} diagnostic rows to {path}", flush=True)
    rows = [{"system": f"{label} (init)", "init": init, "step": 0, "train_seconds": 0,
             **toy.score(init_spec, work, init_tag)}]
    ckpts = sorted((run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    for ckpt in ckpts:
        step = int(ckpt.name.split("-")[1])
        unet = toy.checkpoint_unet(cfg, ckpt, work / "students" / run_tag / f"step-{step}")
        spec = SystemSpec(name=f"{name}-{step}", pipeline=INIT_PIPELINES[init], kind="onestep", unet=str(unet),
                          unet_subfolder=None, steps=1, cfg=1.0, scheduler="ddpm")
        tag = f"{run_tag}-step{step}"
        rows.append({"system": label, "init": init, "step": step,
                     "train_seconds": seconds if step == steps else "",
                     **toy.score(spec, work, tag), **toy.paired_gains(work, tag, init_tag, PAIRED, boot)})
        print(rows[-1], flush=True)
    if trend_from is not None:
        path = Path(out) / f"trend_{run_tag}.json"
        print(f"wrote {path}: {write_trend(rows, trend_from, work, run_tag, boot, path)}", flush=True)
    return rows


def fid_trend(rows: list[dict], start: int) -> dict:
    """Has FID levelled off? The least-squares slope of FID per 1,000 steps over the checkpoints at or after
    ``start``, with its 95 % t interval (n - 2 degrees of freedom; checkpoints treated as independent draws
    around a line, which neighbouring checkpoints of one run only approximate)."""
    import numpy as np
    from scipy import stats

    pts = sorted((int(r["step"]), float(r["fid"])) for r in rows
                 if r["step"] not in ("", 0) and int(r["step"]) >= start)
    if len(pts) < 3:
        raise SystemExit(f"--trend-from {start}: {len(pts)} checkpoint(s) at or after it; a slope needs 3, "
                         f"give an earlier step or more checkpoints (--every)")
    x, y = np.array([p[0] for p in pts], float) / 1000, np.array([p[1] for p in pts], float)
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.975, len(x) - 2) * fit.stderr
    return {"from_step": pts[0][0], "to_step": pts[-1][0], "checkpoints": len(pts),
            "fid_slope_per_1000_steps": fit.slope, "slope_low": fit.slope - half, "slope_high": fit.slope + half,
            "slope_interval": "95% t interval of the least-squares slope (n - 2 df)",
            "fid_mean": float(y.mean()), "fid_min": float(y.min()), "fid_max": float(y.max())}


def write_trend(rows: list[dict], start: int, work: Path, run_tag: str, boot: dict, path: Path) -> dict:
    """``fid_trend`` plus the last checkpoint's paired FID and recall gain over the checkpoint at ``start`` (the
    claims' paired bootstrap: same prompts and noise), as JSON at ``path``."""
    trend = fid_trend(rows, start)
    first, last = f"{run_tag}-step{trend['from_step']}", f"{run_tag}-step{trend['to_step']}"
    trend["last_over_first"] = {"paired_interval": "the claims' paired bootstrap (evaluation.bootstrap)",
                                **toy.paired_gains(work, last, first, PAIRED, boot)}
    write_json(path, trend)
    return trend


def references(work: Path) -> list[dict]:
    teacher = SystemSpec(name="teacher-cfg4.5", pipeline="toy:sd-toy", steps=25, cfg=4.5)
    turbo = SystemSpec(name="turbo", pipeline="toy:sd-toy-turbo", kind="onestep")
    return [{"system": "teacher, 25 steps, cfg 4.5", "init": "", "step": "", "train_seconds": "",
             **toy.score(teacher, work, "teacher-cfg4.5")},
            {"system": "toy turbo, 1 step", "init": "", "step": "", "train_seconds": "",
             **toy.score(turbo, work, "turbo")}]


def write_csv(rows: list[dict], path: Path) -> None:
    with atomic_file(path) as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def write_figure(rows: list[dict], prefix: Path, variant: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("fid", "precision", "recall", "attribute_accuracy")
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    refs = [r for r in rows if r["step"] == ""]
    starts = {}  # --init-unet runs are labelled "<run> from <folder>": name that start, not the hub's init
    for init in ("teacher", "turbo"):
        trained = [r["system"] for r in rows if r["init"] == init and r["step"] not in ("", "0", 0)]
        starts[init] = trained[0].split(" from ", 1)[1] if trained and " from " in trained[0] else f"the {init} init"
    for ax, m in zip(axes[0], metrics):
        for init, colour in (("teacher", "tab:blue"), ("turbo", "tab:orange")):
            pts = sorted((int(r["step"]), float(r[m])) for r in rows if r["init"] == init and r["step"] != "")
            if pts:
                ax.plot(*zip(*pts), marker="o", color=colour, label=f"VSD from {starts[init]}")
        for r, style in zip(refs, ("--", ":")):
            ax.axhline(float(r[m]), color="grey", linestyle=style, linewidth=1, label=r["system"])
        if m == "fid":
            teacher = [float(r["fid"]) for r in refs if r["system"].startswith("teacher")]
            if teacher:
                ax.axhline(1.5 * teacher[0], color="tab:red", linestyle="-.", linewidth=1, label="1.5 × teacher FID")
        ax.set_title(m.replace("_", " "), fontsize=10)
        ax.set_xlabel("student step")
        steps = [int(r["step"]) for r in rows if r["step"] not in ("", 0, "0")]
        if steps and max(steps) >= 20 * min(steps):  # runs of very different lengths: each readable
            ax.set_xscale("symlog", linthresh=min(steps), linscale=0.5)
            ax.set_xlim(0, max(steps) * 1.3)
            ticks = [0] + [10 ** k for k in range(len(str(min(steps))), len(str(max(steps))))]
            ax.set_xticks(ticks, [f"{t:,}" for t in ticks])
            ax.set_xlabel(f"student step (linear to {min(steps)}, then log)")
        ax.grid(alpha=0.3)
    handles = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("Toy world: convergence of the VSD recipe (500 evaluation prompts, protocol toy)"
                 + (f"\nvariant: {variant}" if variant else ""))
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    save_figure(fig, prefix, dpi=150)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inits", nargs="+", default=list(RUNS), choices=list(RUNS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--work", default="/tmp/sb2bench_convergence")
    ap.add_argument("--score-only", action="store_true", help="score the checkpoints that exist, train nothing")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="run-key overrides (YAML values) for a recipe variant or a training seed (seed=2; default "
                         "0); its runs get a folder of their own under --work (a key of the overrides), so variants "
                         "share one --work and its evaluation caches; give each variant an --out of its own")
    ap.add_argument("--out", default=str(OUT), help="folder of convergence.csv and fig_convergence.*")
    ap.add_argument("--init-unet", type=Path, default=None, metavar="FOLDER",
                    help="start Turbo-init VSD from this one-step UNet (FOLDER/unet/) instead of the hub's turbo")
    ap.add_argument("--trend-from", type=int, default=None, metavar="STEP",
                    help="also write <out>/trend_<run>.json: FID's slope over the checkpoints from STEP on (95%% t "
                         "interval) and the last checkpoint's paired gain over the one at STEP")
    ap.add_argument("--diagnostics", action="store_true",
                    help="also write each run's drift diagnostics to <out>/diagnostics_<run>.csv")
    a = ap.parse_args(argv)
    if a.init_unet is not None:
        if a.inits != ["turbo"]:
            ap.error("--init-unet replaces the turbo init: give --inits turbo")
        if not (a.init_unet / "unet" / "config.json").is_file():
            ap.error(f"--init-unet {a.init_unet}: no unet/config.json there; give a folder holding a diffusers UNet "
                     "in unet/ (a bench/turbo_signature.py candidate folder)")
    if a.trend_from is not None and (a.trend_from % a.every or not 0 < a.trend_from < a.steps):
        ap.error(f"--trend-from {a.trend_from}: give a checkpoint step (a multiple of --every {a.every}) below "
                 f"--steps {a.steps}")
    overrides = {}
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set {item!r}: expected KEY=VALUE, e.g. lora_updates_per_step=2")
        overrides[key] = yaml.safe_load(value)
    torch.set_num_threads(1)
    work = Path(a.work)
    rows = []
    for init in a.inits:
        rows += probe(init, a.steps, a.every, work, a.score_only, overrides, a.init_unet,
                      Path(a.out) if a.diagnostics else None, a.trend_from, Path(a.out))
    rows += references(work)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "convergence.csv"
    if path.exists():  # keep the other inits' rows of an earlier invocation
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["init"] and r["init"] not in a.inits] + rows
    write_csv(rows, path)
    recipe = [item for item in a.set if item.partition("=")[0] not in NON_SEMANTIC]  # not threads, extend_from, ...
    variant = " ".join([*recipe, *([f"init from {a.init_unet.name}"] if a.init_unet else [])])
    write_figure([{k: str(v) if not isinstance(v, float) else v for k, v in r.items()} for r in rows],
                 out / "fig_convergence", variant)
    return 0


if __name__ == "__main__":
    sys.exit(main())
