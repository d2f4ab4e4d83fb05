"""Can the toy turbo carry SD-Turbo's signature (SBv2 Table 1: sharper but less diverse than its teacher)?

A toy turbo regresses z onto the teacher's ODE sample from ``noise_scale`` · z (toy.training.turbo of
config/default.yaml; the hub shipped scale 1 at cfg 4.5 until 2026-12-02, and 0.6 at cfg 7.5 since): below 1,
each target is a lower-temperature, more typical sample of its caption (a truncation trick), a mode-seeking
target in the spirit of SD-Turbo's adversarial distillation at a fraction of its cost. Each candidate is
trained with the config's turbo parameters (pairs, steps, lr, seed; ``--set`` overrides them), sampled in one
step on the toy evaluation set and scored under protocol `toy` beside the teacher (25 steps, cfg 4.5), the
teacher sampled from the same scaled noise (the candidate's target distribution) and the hub's turbo. Row labels
name every parameter that differs from the schema's defaults.

A candidate of the second kind (``--adversarial KEY=VALUE ...``, the keys of toy.training.turbo.adversarial) runs
train_turbo's adversarial phase (toyworld/adversarial.py: a caption-conditioned critic against real renders, the
regression as anchor) on the shipped turbo, which is that recipe's regression phase; its anchor pairs are
``--pairs`` teacher pairs drawn as the hub draws them (cached under --work).

Issue 12's signature: precision ≥ the teacher's at cfg 4.5, recall ≤ its recall − 0.10, FID above the teacher's.

  python bench/turbo_signature.py [--noise-scales 0.6 0.8] [--work /tmp/sb2bench_turbo_signature] [--threads 1]
  python bench/turbo_signature.py --noise-scales --adversarial steps=300 weight=1 [--pairs 1024]
  python bench/turbo_signature.py --noise-scales 1 --set steps=1500 lr=3.0e-4 [teacher_cfg=7.5]
  python bench/turbo_signature.py --noise-scales 1 --set ... --adversarial steps=1000 --adversarial-from-candidate

``--set KEY=VALUE ...`` overrides the regression's parameters (the keys of toy.training.turbo) for the
noise-scale candidates; their rows and cached weights are keyed by the parameters, so each setting is its own row.

Writes reports/bench/turbo_signature.{json,md} (rows merged over invocations, keyed by system).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import _toy_runs as toy
import numpy as np
import torch

from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.hashing import sha256_json, sha256_tree
from sb2bench.models import zoo
from sb2bench.sample import generate
from sb2bench.plan.config import validate_config
from sb2bench.sample.generate import SystemSpec, encode_prompts, load_system
from sb2bench.toyworld.adversarial import adversarial_phase
from sb2bench.toyworld.train_turbo import teacher_pairs, train_turbo
from sb2bench.toyworld.training import seed_everything

REPORT = toy.ROOT / "reports" / "bench" / "turbo_signature"
TEACHER = SystemSpec(name="teacher-cfg4.5", pipeline="toy:sd-toy", steps=25, cfg=4.5)


def candidate(scale: float, params: dict, work: Path) -> tuple[SystemSpec, float | None]:
    """Train (once) the turbo regressed onto the teacher's samples from ``scale`` · z; its one-step system and
    training seconds (kept beside the weights, so that a rerun on the cached candidate reports them again). The
    cache is keyed by the teacher's weights, the parameters and the scale, never by a name alone."""
    teacher = zoo.toy_hub_dir() / "sd-toy"
    key = sha256_json({"teacher": sha256_tree(teacher), "params": params, "scale": scale})[:12]
    folder = work / f"turbo-scale{scale:g}-{key}"
    if not (folder / "unet" / "config.json").exists():
        t0 = time.time()
        train_turbo(folder, teacher, {**params, "noise_scale": scale})
        _write_seconds(folder, time.time() - t0)
    return SystemSpec(name=folder.name, pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(folder),
                      unet_subfolder="unet", steps=1, cfg=1.0, scheduler="ddpm"), _read_seconds(folder)


def _write_seconds(folder: Path, seconds: float) -> None:
    write_json(folder / "train_seconds.json", {"train_seconds": round(seconds, 1)})


def _read_seconds(folder: Path) -> float | None:
    path = folder / "train_seconds.json"
    return json.loads(path.read_text())["train_seconds"] if path.exists() else None


def adversarial_candidate(settings: dict, params: dict, n_pairs: int, work: Path,
                          init: Path | None = None) -> tuple[SystemSpec, str, dict]:
    """Train (once) the shipped turbo (or the candidate folder ``init``) through the adversarial phase with
    ``settings``; its one-step system. The pairs and the candidate are cached under keys of their content (the
    teacher's and the starting turbo's weights, the pair parameters, the settings), so a retrained hub or a changed
    recipe never reuses them."""
    hub = zoo.toy_hub_dir()
    pair_params = {**params, "n_pairs": n_pairs}
    pair_key = sha256_json({"teacher": sha256_tree(hub / "sd-toy"), "params": pair_params})[:12]
    start = hub / "sd-toy-turbo" if init is None else init / "unet"
    key = sha256_json({"pairs": pair_key, "turbo": sha256_tree(start), "settings": settings})[:12]
    tag = f"turbo-adv-{key}"
    folder = work / tag
    extra: dict = {"adversarial": settings, "n_pairs": n_pairs, "cache_key": key}
    if not (folder / "unet" / "config.json").exists():
        t0 = time.time()
        pair_file = work / f"pairs-{pair_key}.pt"
        if pair_file.exists():
            z, x0, captions = torch.load(pair_file)
        else:
            z, x0, captions = teacher_pairs(hub / "sd-toy", pair_params)
            with atomic_file(pair_file, "wb") as f:
                torch.save((z, x0, captions), f)
        system = load_system(SystemSpec(name="turbo", pipeline="toy:sd-toy-turbo", kind="onestep",
                                        seed=params["seed"], unet=None if init is None else str(init),
                                        unet_subfolder="unet"))
        with torch.no_grad():
            cond = torch.cat([encode_prompts(system, captions[i:i + 512]) for i in range(0, len(captions), 512)])
        student = system.unet.train().requires_grad_(True)
        ema, history = adversarial_phase(student, system, (z, x0, cond), {"seed": params["seed"], **settings},
                                         seed_everything(params["seed"]), work / "data_cache")
        ema.module.save_pretrained(folder / "unet")
        write_json(folder / "history.json", history)
        _write_seconds(folder, time.time() - t0)
    extra["train_seconds"] = _read_seconds(folder)
    extra["history_tail"] = json.loads((folder / "history.json").read_text())[-3:]
    return SystemSpec(name=tag, pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(folder),
                      unet_subfolder="unet", steps=1, cfg=1.0, scheduler="ddpm"), tag, extra


def adversarial_settings(pairs: list[str]) -> dict:
    """KEY=VALUE pairs validated (and completed with the defaults) by the schema of toy.training.turbo.adversarial."""
    settings = _key_values("--adversarial", pairs, "steps=300")
    config = validate_config({"toy": {"training": {"turbo": {"adversarial": settings}}}})
    return config["toy"]["training"]["turbo"]["adversarial"]


def _key_values(flag: str, items: list[str], example: str) -> dict:
    """KEY=VALUE command-line items as a dict, each value read as JSON (numbers, booleans, strings in quotes)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"{flag} {item!r}: expected KEY=VALUE, e.g. {example}")
        out[key] = json.loads(value)
    return out


def hub_turbo_params() -> dict:
    """The parameters the toy hub's turbo was trained with (its PROVENANCE.json)."""
    records = json.loads((zoo.toy_hub_dir() / "PROVENANCE.json").read_text())
    return next(r["params"] for r in records if r["component"] == "turbo")


def recipe_suffix(params: dict) -> str:
    """`` (KEY=VALUE, ...)``: the regression parameters that differ from the schema's defaults (the first shipped
    turbo's recipe), so that a row's label names its whole recipe whatever config/default.yaml ships."""
    base = validate_config({"toy": {"training": {"turbo": {}}}})["toy"]["training"]["turbo"]
    diff = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
            if k not in ("noise_scale", "threads", "adversarial") and v != base.get(k)]
    return f" ({', '.join(diff)})" if diff else ""


def recipe_name(params: dict) -> str:
    return f"regressed on {params.get('noise_scale', 1.0):g} · z{recipe_suffix(params)}"


def regression_params(items: list[str]) -> dict:
    """toy.training.turbo of config/default.yaml with KEY=VALUE overrides, validated by its schema."""
    params = toy.default_config()["toy"]["training"]["turbo"]
    overrides = _key_values("--set", items, "steps=1500")
    if "noise_scale" in overrides:
        raise SystemExit("--set noise_scale: give the scales with --noise-scales (one candidate per scale)")
    unknown = sorted(set(overrides) - set(params))
    if unknown:
        raise SystemExit(f"--set {', '.join(unknown)}: not a key of toy.training.turbo; choose from {sorted(params)}")
    params = {**params, **overrides}
    return validate_config({"toy": {"training": {"turbo": params}}})["toy"]["training"]["turbo"]


def teacher_at_scale(scale: float, work: Path) -> dict:
    """The teacher (25 steps, cfg 4.5) from the evaluation noise times ``scale``: the candidate's target."""
    original = generate.initial_noise
    generate.initial_noise = lambda indices, shape, seed: original(indices, shape, seed) * scale
    try:
        return toy.score(SystemSpec(name=f"teacher-cfg4.5-scale{scale:g}", pipeline="toy:sd-toy", steps=25,
                                    cfg=4.5), work, f"teacher-cfg4.5-scale{scale:g}")
    finally:
        generate.initial_noise = original


def paired(work: Path, tag: str) -> dict:
    """The system against the teacher and (a candidate) against the shipped turbo, paired over the same prompts
    and noise."""
    boot = toy.default_config()["evaluation"]["bootstrap"]
    out = {"vs teacher": toy.paired_gains(work, tag, "teacher-cfg4.5", ("precision", "recall"), boot),
           "precision misses": precision_misses(work, tag)}
    if tag != "turbo":
        out["vs shipped turbo"] = toy.paired_gains(work, tag, "turbo", ("precision", "recall", "fid"), boot)
    return out


def precision_misses(work: Path, tag: str, than_tag: str = "teacher-cfg4.5") -> dict:
    """Where ``tag`` loses precision to the teacher: images (same prompt, same noise) inside the real manifold for
    the teacher but outside it for ``tag``, and ``tag``'s attribute accuracy on those images against the rest, so
    that a reader can tell attribute mistakes from off-manifold renders of the right attributes."""
    a, b = (np.load(work / "eval" / t / "per_image.npz") for t in (tag, than_tag))
    if not np.array_equal(a["prompt_index"], b["prompt_index"]):
        raise ValueError(f"{tag} and {than_tag} were not scored on the same prompts in the same order")
    lost = (b["value_precision"] == 1) & (a["value_precision"] == 0)
    gained = (b["value_precision"] == 0) & (a["value_precision"] == 1)
    accuracy = a["value_attribute_accuracy"]
    return {"lost": int(lost.sum()), "gained": int(gained.sum()),
            "attribute_accuracy_lost": float(accuracy[lost].mean()) if lost.any() else None,
            "attribute_accuracy_kept": float(accuracy[~lost].mean())}


def signature(m: dict, teacher: dict) -> dict:
    return {"precision_at_least_teacher": m["precision"] >= teacher["precision"],
            "recall_at_least_0.10_below": m["recall"] <= teacher["recall"] - 0.10,
            "fid_above_teacher": m["fid"] > teacher["fid"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--noise-scales", nargs="*", type=float, default=[0.6, 0.8])
    ap.add_argument("--adversarial", nargs="+", metavar="KEY=VALUE",
                    help="also train an adversarial candidate with these toy.training.turbo.adversarial settings")
    ap.add_argument("--adversarial-from-candidate", action="store_true",
                    help="start the adversarial phase from this invocation's regression candidate (one noise "
                         "scale, with --set) instead of the shipped turbo; its anchor pairs use the --set parameters")
    ap.add_argument("--pairs", type=int, default=1024, help="teacher pairs anchoring the adversarial candidate")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="override the regression's toy.training.turbo parameters for the noise-scale candidates")
    ap.add_argument("--work", default="/tmp/sb2bench_turbo_signature")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-target", action="store_true", help="do not score the teacher from the scaled noise")
    a = ap.parse_args(argv)
    if any(not 0 < s <= 1 for s in a.noise_scales):
        ap.error(f"--noise-scales {a.noise_scales}: each must be in (0, 1]")
    settings = adversarial_settings(a.adversarial) if a.adversarial else None
    if a.adversarial_from_candidate and (settings is None or len(a.noise_scales) != 1):
        ap.error("--adversarial-from-candidate needs --adversarial and exactly one --noise-scales value")
    torch.set_num_threads(a.threads)
    work = Path(a.work)
    params = toy.default_config()["toy"]["training"]["turbo"]
    regression = regression_params(a.set)
    suffix = recipe_suffix(regression)
    hub_params = hub_turbo_params()
    hub_turbo = f"toy turbo (hub, {recipe_name(hub_params)})"
    rows = {"teacher, 25 steps, cfg 4.5": {"metrics": toy.score(TEACHER, work, "teacher-cfg4.5")},
            hub_turbo: {"metrics": toy.score(
                SystemSpec(name="turbo", pipeline="toy:sd-toy-turbo", kind="onestep"), work, "turbo"),
                "params": hub_params}}
    teacher = rows["teacher, 25 steps, cfg 4.5"]["metrics"]
    start = None
    for scale in a.noise_scales:
        if not a.skip_target:
            rows[f"teacher from {scale:g} · z (target)"] = {"metrics": teacher_at_scale(scale, work),
                                                           "noise_scale": scale}
        spec, seconds = candidate(scale, regression, work)
        start = (Path(spec.unet), f"turbo regressed on {scale:g} · z{suffix}", scale)
        m = toy.score(spec, work, spec.name)
        rows[f"turbo regressed on {scale:g} · z{suffix}"] = {
            "metrics": m, "noise_scale": scale, "train_seconds": seconds, "signature": signature(m, teacher),
            "params": regression, "paired": paired(work, spec.name)}
        print(scale, {k: round(v, 4) for k, v in m.items() if isinstance(v, float)}, flush=True)
        _save(rows)
    if settings is not None:
        init, origin, scale = start if a.adversarial_from_candidate else (None, "", 1.0)
        # the anchor pairs are drawn as the starting turbo's were: the candidate's parameters and noise scale
        anchor = {**regression, "noise_scale": scale} if init else params
        spec, tag, extra = adversarial_candidate(settings, anchor, a.pairs, work, init)
        m = toy.score(spec, work, tag)
        origin = f"; from the {origin}" if origin else ""
        rows[f"turbo + adversarial ({', '.join(a.adversarial)}; {a.pairs} pairs{origin})"] = {
            "metrics": m, "signature": signature(m, teacher), "params": anchor,
            "paired": paired(work, tag), **extra}
        print(tag, {k: round(v, 4) for k, v in m.items() if isinstance(v, float)}, flush=True)
        _save(rows)
    shipped = rows[hub_turbo]
    shipped.update(signature=signature(shipped["metrics"], teacher), paired=paired(work, "turbo"))
    _save(rows)
    return 0


def _save(new: dict) -> None:
    toy.merge_report(REPORT, "turbo_signature", new, _write_md)


def _write_md(rows: dict) -> None:
    teacher = rows["teacher, 25 steps, cfg 4.5"]["metrics"]
    lines = ["# A toy turbo with SD-Turbo's signature? (CPU)", "",
             "One-step candidates regressed onto the teacher's samples from a scaled start noise, beside the teacher "
             "and the hub's turbo, on the toy evaluation set (protocol `toy`). Signature (issue 12): precision ≥ "
             f"the teacher's ({teacher['precision']:.3f}), recall ≤ its recall − 0.10 "
             f"({teacher['recall'] - 0.10:.3f}), FID above its {teacher['fid']:.2f}. Written by "
             "`bench/turbo_signature.py`; parameters and command lines in the JSON beside this file.", "",
             "| system | FID ↓ | precision | recall | CLIP | attribute acc. | train s | signature | "
             "precision − hub turbo of its run | precision − teacher | recall − teacher | precision lost / gained "
             "vs teacher (attr. acc. on lost · rest) |",
             "|---|---:|---:|---:|---:|---:|---:|---|---|---|---|---|"]
    for name, r in rows.items():
        m, sig = r["metrics"], r.get("signature")
        verdict = "–" if sig is None else ("met" if all(sig.values()) else
                                           "missed: " + ", ".join(k for k, ok in sig.items() if not ok))
        secs = r.get("train_seconds")
        p = r.get("paired")
        gains = ["–"] * 4 if p is None else [_gain(p.get("vs shipped turbo"), "precision"),
                                             _gain(p["vs teacher"], "precision"), _gain(p["vs teacher"], "recall"),
                                             _misses(p.get("precision misses"))]
        lines.append(f"| {name} | {m['fid']:.2f} | {m['precision']:.3f} | {m['recall']:.3f} | {m['clip_score']:.4f} | "
                     f"{m['attribute_accuracy']:.3f} | {'–' if secs is None else f'{secs:.0f}'} | {verdict} | "
                     + " | ".join(gains) + " |")
    lines += ["", "Paired columns: the candidate minus the other system on the same prompts and noise, with the 95 % "
              "basic bootstrap interval over images and the claims' verdict (holds: the candidate is higher; "
              "evaluation.bootstrap of config/default.yaml). Precision lost / gained: images whose prompt and noise the "
              "teacher renders inside the real manifold (k-NN precision) and the candidate outside it, and the reverse; "
              "the candidate's attribute accuracy on the lost images and on the rest."]
    toy.write_md_with_notes(REPORT, lines)


def _misses(m: dict | None) -> str:
    if m is None:
        return "–"
    lost = "–" if m["attribute_accuracy_lost"] is None else f"{m['attribute_accuracy_lost']:.3f}"
    return f"{m['lost']} / {m['gained']} ({lost} · {m['attribute_accuracy_kept']:.3f})"


def _gain(p: dict | None, metric: str) -> str:
    if p is None:
        return "–"
    return (f"{p[metric + '_gain']:+.3f} [{p[metric + '_gain_low']:+.3f}, {p[metric + '_gain_high']:+.3f}] "
            f"{p[metric + '_verdict']}")


if __name__ == "__main__":
    sys.exit(main())
