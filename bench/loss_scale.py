"""Loss weights on one scale: the student's gradient norm from VSD alone against the CLIP and HPS terms.

At the state where training starts (the LoRA teacher warmed up on the initial student, the student not yet
updated) the script draws ``--batches`` training batches and, on each, takes the gradient of every term with
respect to the student's trainable weights separately (no clipping): VSD, the clamped CLIP loss at weight 1,
the unclamped CLIP loss at weight 1 and the HPS loss at weight 1. The weight that puts a term's gradient
norm at ``--ratio`` times the VSD norm is ``ratio * |g_vsd| / |g_term|``; the report also gives the cosine
of each term's gradient with the VSD gradient (do they pull the same way?).

Both student schemes are measured from the toy turbo (the init of every CLIP/HPS run in the default config):
full (turbo-init, clip-*) and LoRA (efficient-clip, model-b, model-b-hps). The run config is the toy
default (config/default.yaml training.defaults, as the workflow resolves it).

  python bench/loss_scale.py [--batches 8] [--ratio 1.0] [--work /tmp/loss_scale]

Writes reports/bench/loss_scale.{json,md}.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import _toy_runs as toy
import sb2bench  # noqa: F401  (torchvision shim)
import torch
import yaml

from sb2bench._infra.atomic import write_json
from sb2bench.data.prompts import write_prompts
from sb2bench._infra.provenance import record
from sb2bench.toyworld.prompt_sets import training_prompts
from sb2bench.train import losses, trainer
from sb2bench.train.clip_guidance import decode01
from sb2bench.train.config import TrainConfig
from sb2bench.train.step import _vsd_loss
from sb2bench.train.student import predict_x0

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "reports" / "bench" / "loss_scale"
TERMS = ("vsd", "clip_clamped", "clip_unclamped", "hps")


def toy_defaults() -> dict:
    """config/default.yaml training.defaults (the keys every toy run starts from)."""
    return dict(yaml.safe_load((ROOT / "config" / "default.yaml").read_text())["training"]["defaults"])


def _norm(grads: list[torch.Tensor | None]) -> torch.Tensor:
    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None))


def _flat(grads: list[torch.Tensor | None], params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(q)).flatten().double() for g, q in zip(grads, params)])


def measure(cfg: TrainConfig, batches: int, cache: Path) -> dict:
    """Mean gradient norms (and cosines with VSD) of each term over ``batches`` batches after the warm-up."""
    acc = trainer._accelerator(cfg)
    prompts, cond_all, null, _, p = trainer._prompts_and_parts(cfg, acc, cache)
    captions_all = [r["caption"] for r in prompts]
    t0 = time.time()
    trainer._warm_up(p, cond_all, null)
    warmup_s = time.time() - t0
    params, null = p.student_params, null.to(p.device)
    norms: dict[str, list[float]] = {k: [] for k in TERMS}
    cosines: dict[str, list[float]] = {k: [] for k in TERMS[1:]}
    active: list[float] = []
    for _ in range(batches):
        idx = torch.randint(0, len(cond_all), (cfg.batch_size,), generator=p.gen)
        cond, captions = cond_all[idx].to(p.device), [captions_all[i] for i in idx.tolist()]
        c = p.student.config
        shape = (cfg.batch_size, c.in_channels, c.sample_size, c.sample_size)
        z = torch.randn(shape, generator=p.gen)
        t = torch.randint(cfg.t_min, cfg.t_max + 1, (cfg.batch_size,), generator=p.gen)
        noise = torch.randn(shape, generator=p.gen)
        x0 = predict_x0(p.student, p.acp, z, cond, p.student_t)
        img = decode01(p.decoder, x0)
        cos = p.clip.cosines_of_images(img, captions)
        active.append((cos < cfg.clip_tau).float().mean().item())
        terms = {"vsd": _vsd_loss(p, x0, cond, null, t, noise),
                 "clip_clamped": losses.clip_loss(cos, "clamped", cfg.clip_tau),
                 "clip_unclamped": losses.clip_loss(cos, "unclamped", cfg.clip_tau),
                 "hps": losses.hps_loss(p.hps.scores(img, captions))}
        grads = {k: torch.autograd.grad(v, params, retain_graph=True, allow_unused=True) for k, v in terms.items()}
        for k in TERMS:
            norms[k].append(_norm(grads[k]).item())
        g_vsd = _flat(grads["vsd"], params)
        for k in cosines:
            g = _flat(grads[k], params)
            cosines[k].append((g @ g_vsd / (g.norm() * g_vsd.norm()).clamp_min(1e-30)).item())
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    sd = lambda v: math.sqrt(sum((x - mean(v)) ** 2 for x in v) / max(1, len(v) - 1))  # noqa: E731
    return {"grad_norm": {k: mean(v) for k, v in norms.items()}, "grad_norm_sd": {k: sd(v) for k, v in norms.items()},
            "cos_with_vsd": {k: mean(v) for k, v in cosines.items()}, "clip_active_fraction": mean(active),
            "batches": batches, "warmup_seconds": round(warmup_s, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--ratio", type=float, default=1.0, help="target |g_term| / |g_vsd| at the chosen weight")
    ap.add_argument("--n-train-prompts", type=int, default=2000)
    ap.add_argument("--work", default="/tmp/sb2bench_loss_scale")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(a.work)
    prompts = work / f"train_prompts_{a.n_train_prompts}.jsonl"
    if not prompts.exists():
        write_prompts(prompts, training_prompts(0, a.n_train_prompts))
    defaults = toy_defaults()
    base = {**defaults, "teacher": "toy:sd-toy", "student_init": "toy:sd-toy-turbo", "prompts": str(prompts),
            "clip_loss": "clamped", "clip_model": "toy:clip-toy", "hps_loss_weight": 1.0,
            "hps_model": "toy:clip-toy", "text_embedding_cache": str(work / "text_cache")}
    results = {}
    for scheme in ("full", "lora"):
        # as in config/default.yaml: the full CLIP runs decode with the teacher's VAE, the LoRA ones with taesd
        cfg = TrainConfig.from_dict({**base, "scheme": scheme, **({"clip_decoder": None} if scheme == "full" else {})})
        m = measure(cfg, a.batches, work / "text_cache")
        g = m["grad_norm"]
        m["weight_for_ratio"] = {k: a.ratio * g["vsd"] / g[k] for k in TERMS[1:] if g[k] > 0}
        m["vsd_share_at_config_weights"] = {
            k: g["vsd"] / (g["vsd"] + w * g[k]) for k, w in (("clip_clamped", defaults.get("clip_weight", 0.1)),
                                                             ("hps", 0.5))}
        results[scheme] = m
        print(scheme, m, flush=True)
    out = record(benchmark="loss_scale", ratio=a.ratio, config=base, results=results, argv=sys.argv[1:])
    write_json(REPORT.with_suffix(".json"), out)
    _write_md(out, defaults)
    return 0


def _write_md(out: dict, defaults: dict) -> None:
    ratio = out["ratio"]
    lines = ["# Loss weights on one scale (toy, CPU, 1 thread)", "",
             "Student gradient norm (L2 over the trainable weights, before clipping) of each term at weight 1, at the "
             "state where training starts (LoRA teacher warmed up, student not yet updated), from the toy turbo, "
             f"mean (s.d.) over {out['results']['full']['batches']} batches of the toy default batch size. Written "
             "by `bench/loss_scale.py`; run config and command line in the JSON beside this file.", "",
             f"| scheme | VSD | clamped CLIP | unclamped CLIP | HPS | cos(CLIP, VSD) | cos(HPS, VSD) | "
             f"CLIP active | clamped-CLIP weight for {ratio:g}× VSD | HPS weight for {ratio:g}× VSD |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for scheme, m in out["results"].items():
        g, s, w = m["grad_norm"], m["grad_norm_sd"], m["weight_for_ratio"]
        cells = " | ".join(f"{g[k]:.3g} ({s[k]:.2g})" for k in TERMS)
        lines.append(f"| {scheme} | {cells} | {m['cos_with_vsd']['clip_clamped']:.3f} | "
                     f"{m['cos_with_vsd']['hps']:.3f} | {m['clip_active_fraction']:.2f} | "
                     f"{w.get('clip_clamped', float('nan')):.3g} | {w.get('hps', float('nan')):.3g} |")
    lines += ["", "CLIP active: share of samples whose toy-CLIP cosine is below `clip_tau` (the clamp passes "
              f"their gradient; clip_tau = {defaults.get('clip_tau')}).", ""]
    toy.write_md_with_notes(REPORT, lines)


if __name__ == "__main__":
    sys.exit(main())
