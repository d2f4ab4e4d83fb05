"""Build the toy hub component by component, each with a provenance record beside it.

Layout (mirrors the real hub repos the toy models stand in for):
  tokenizer-toy/          CLIPTokenizer                      (SD 2.1 'tokenizer')
  vae-toy/                AutoencoderKL                      (SD 2.1 'vae')
  taesd-toy/              AutoencoderTiny                    (madebyollin/taesd)
  sd-toy/                 unet, vae, text_encoder, tokenizer, scheduler (stable-diffusion-2-1-base)
  sd-toy-turbo/           the same layout with the one-step UNet (stabilityai/sd-turbo)
  clip-toy/               open_clip local folder             (ViT-g-14 / ViT-B-32 / HPS ViT-H-14)
  inception-toy/          TorchScript feature network        (clean-fid's inception-2015-12-05.pt)
  classifier-toy/         attribute classifier (toy only)
"""
from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

from sb2bench._infra.atomic import atomic_dir, write_json

COMPONENTS = ("tokenizer", "vae", "tiny_vae", "classifier", "feature_net", "clip", "teacher", "turbo")
FOLDERS = {"tokenizer": "tokenizer-toy", "vae": "vae-toy", "tiny_vae": "taesd-toy",
           "classifier": "classifier-toy", "feature_net": "inception-toy", "clip": "clip-toy",
           "teacher": "sd-toy", "turbo": "sd-toy-turbo"}
DEPENDS = {"tiny_vae": ("vae",), "teacher": ("vae", "tokenizer"), "turbo": ("teacher",)}


def machine() -> dict:
    return {"platform": platform.platform(), "python": sys.version.split()[0], "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def write_model_index(out: Path) -> None:
    """``model_index.json`` of a StableDiffusionPipeline folder (as in SD 2.1-base)."""
    index = {"_class_name": "StableDiffusionPipeline", "feature_extractor": [None, None],
             "requires_safety_checker": False, "safety_checker": [None, None],
             "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
             "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
             "vae": ["diffusers", "AutoencoderKL"], "image_encoder": [None, None]}
    (Path(out) / "model_index.json").write_text(json.dumps(index, indent=2))


def _assemble_pipeline(out: Path, hub: Path, unet_from: Path, text_encoder_from: Path) -> None:
    """Write a diffusers pipeline folder (model_index.json + components) like SD 2.1-base."""
    from sb2bench.toyworld.models import build_scheduler_config

    shutil.copytree(unet_from, out / "unet", dirs_exist_ok=True)
    shutil.copytree(text_encoder_from, out / "text_encoder", dirs_exist_ok=True)
    shutil.copytree(hub / FOLDERS["vae"], out / "vae", dirs_exist_ok=True)
    shutil.copytree(hub / FOLDERS["tokenizer"], out / "tokenizer", dirs_exist_ok=True)
    for sub in ("vae", "tokenizer"):  # their training records stay with the standalone folders
        (out / sub / "training.json").unlink(missing_ok=True)
    (out / "scheduler").mkdir(exist_ok=True)
    sched = {"_class_name": "DDIMScheduler", **build_scheduler_config()}
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched, indent=2))
    write_model_index(out)


def train_component(name: str, hub: Path, params: dict, cache_dir: Path | None) -> Path:
    """Train ``name`` into ``hub/FOLDERS[name]`` atomically and record how it was made."""
    if name not in COMPONENTS:
        raise ValueError(f"unknown toy component {name!r}; choose one of {COMPONENTS}")
    hub = Path(hub)
    for dep in DEPENDS.get(name, ()):
        if not (hub / FOLDERS[dep]).exists():
            raise FileNotFoundError(f"toy component {name!r} needs {dep!r} at {hub / FOLDERS[dep]}; train it first")
    torch.set_num_threads(params.get("threads") or torch.get_num_threads())
    final = hub / FOLDERS[name]
    t0 = time.time()
    with atomic_dir(final) as out:
        metrics = _train(name, out, hub, params, cache_dir)
        record = {"component": name, "params": params, "metrics": metrics, "machine": machine(),
                  "wall_seconds": round(time.time() - t0, 1),
                  "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        write_json(out / "training.json", record)
    return final


def _train(name: str, out: Path, hub: Path, p: dict, cache: Path | None) -> dict:
    if name == "tokenizer":
        from sb2bench.toyworld.tokenizer import build_toy_tokenizer

        build_toy_tokenizer(p["max_length"]).save_pretrained(out)
        return {}
    if name == "vae":
        from sb2bench.toyworld.train_autoencoders import train_vae

        return train_vae(out, p, cache)
    if name == "tiny_vae":
        from sb2bench.toyworld.train_autoencoders import train_tiny_vae

        return train_tiny_vae(out, hub / FOLDERS["vae"], p, cache)
    if name == "classifier":
        from sb2bench.toyworld.train_attribute_nets import train_classifier

        return train_classifier(out, p, cache)
    if name == "feature_net":
        from sb2bench.toyworld.train_attribute_nets import train_feature_net

        return train_feature_net(out / "inception-toy.pt", p, cache)
    if name == "clip":
        from sb2bench.toyworld.train_clip import train_clip

        return train_clip(out, p, cache)
    if name == "teacher":
        from sb2bench.toyworld.train_teacher import train_teacher

        stage = out / "_stage"
        metrics = train_teacher(stage, hub / FOLDERS["vae"], hub / FOLDERS["tokenizer"], p, cache)
        _assemble_pipeline(out, hub, stage / "unet", stage / "text_encoder")
        shutil.rmtree(stage)
        return metrics
    from sb2bench.toyworld.train_turbo import train_turbo

    stage = out / "_stage"
    metrics = train_turbo(stage, hub / FOLDERS["teacher"], p, cache)
    _assemble_pipeline(out, hub, stage / "unet", hub / FOLDERS["teacher"] / "text_encoder")
    shutil.rmtree(stage)
    return metrics


def _summary(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "history"}


def write_provenance(hub: Path, out_md: Path) -> None:
    """PROVENANCE.md/.json: how long each component took, on what, with which params and seed."""
    hub = Path(hub)
    rows = []
    for name in COMPONENTS:
        rec = json.loads((hub / FOLDERS[name] / "training.json").read_text())
        rows.append({"component": name, "folder": FOLDERS[name], "wall_seconds": rec["wall_seconds"],
                     "machine": rec["machine"], "params": rec["params"], "metrics": _summary(rec["metrics"]),
                     "finished": rec["finished"]})
    write_json(out_md.with_suffix(".json"), rows)
    total = sum(r["wall_seconds"] for r in rows)
    m = rows[-1]["machine"]
    lines = ["# Toy hub provenance", "",
             "Each component was trained by `sb2bench toy-train COMPONENT --params JSON`, the command of rule "
             "`toy_train_component`; `snakemake --cores all toy_hub --config toy='{hub: retrain}'` runs them all "
             "with the parameters of `toy.training` in the config (listed below and in PROVENANCE.json). "
             f"Total training wall time {total / 60:.1f} min on {m['platform']}, torch {m['torch']}, "
             f"{m['cpu_threads']} CPU threads, GPU: {m['cuda'] or 'none'}.", "",
             "| component | folder | wall time | seed | key results |", "|---|---|---|---|---|"]
    for r in rows:
        res = ", ".join(f"{k}={_fmt(v)}" for k, v in r["metrics"].items())
        lines.append(f"| {r['component']} | `{r['folder']}` | {r['wall_seconds']:.0f} s | "
                     f"{r['params'].get('seed', '–')} | {res or '–'} |")
    lines += ["", "Parameters of every component: `PROVENANCE.json`, and `training.json` in each folder "
              "(with the loss history)."]
    out_md.write_text("\n".join(lines) + "\n")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    return str(v)


def ship(hub: Path, dest: Path) -> None:
    """Copy a trained hub into the package, folder by folder, each replaced atomically."""
    hub, dest = Path(hub), Path(dest)
    for folder in FOLDERS.values():
        with atomic_dir(dest / folder) as tmp:
            shutil.copytree(hub / folder, tmp, dirs_exist_ok=True)
    for f in ("PROVENANCE.json", "PROVENANCE.md"):
        shutil.copy2(hub / f, dest / f)
