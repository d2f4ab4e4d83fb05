"""Shared by the toy training benches (lora_student.py, convergence.py, turbo_signature.py): a run of config/default.yaml resolved
as the workflow resolves it, and a one-step student sampled and scored on the toy evaluation set with the
project's own stack (sampling.generate_shard, evaluate.evaluate, metrics.attributes) under protocol `toy`."""
from __future__ import annotations

import dataclasses
import fcntl
import functools
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import sb2bench  # noqa: F401  (torchvision shim)

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.provenance import record
from sb2bench.plan.config import load_config
from sb2bench.evaluate.score import cached_features, evaluate
from sb2bench.evaluate.metrics.features import load_feature_net
from sb2bench._infra.hashing import sha256_json, sha256_tree
from sb2bench.report.claims import check_better
from sb2bench.data.prompts import read_prompts, write_prompts
from sb2bench.plan.runs import resolve_run
from sb2bench.sample.generate import SystemSpec, generate_shard
from sb2bench.toyworld.prompt_sets import training_prompts, write_eval_set

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"feature_net": "toy:inception-toy", "clip": "toy:clip-toy"}
METRICS = ("fid", "precision", "recall", "clip_score", "attribute_accuracy")


FEATURE_NET = "toy:inception-toy"


@functools.cache
def _feature_net():
    return load_feature_net(FEATURE_NET, "cpu")


def toy_features(folder: Path, cache: Path):
    """The toy Inception's features of an image folder, cached under ``cache`` by the folder's content hash."""
    return cached_features(folder, sha256_tree(folder), zoo.describe(FEATURE_NET), _feature_net, cache)


def default_config() -> dict:
    return load_config(ROOT / "config" / "default.yaml")


def resolved_run(name: str, work: Path, **overrides) -> dict:
    """The run ``name`` of config/default.yaml as ``sb2bench train`` gets it, with its training prompts
    (toy.train_prompts: n and seed) and text cache under ``work``; ``overrides`` over it."""
    config = default_config()
    run = {r["name"]: r for r in config["training"]["runs"]}[name]
    tp = config["toy"]["train_prompts"]
    prompts = work / f"train_prompts_{tp['seed']}_{tp['n_prompts']}.jsonl"
    if not prompts.exists():
        write_prompts(prompts, training_prompts(tp["seed"], tp["n_prompts"]))
    cfg = resolve_run(config, {"config": {}, "init": "turbo", **run}, str(work / "results"))
    return {**cfg, "prompts": str(prompts), "text_embedding_cache": str(work / "text_cache"), **overrides}


def eval_set(work: Path) -> Path:
    """The default config's toy evaluation set (toy.eval_set: n and seed), written once under ``work``."""
    es = default_config()["toy"]["eval_set"]
    folder = work / f"eval_set_{es['seed']}_{es['n_prompts']}"
    if not (folder / "prompts.jsonl").exists() or not (folder / "reference").is_dir():
        write_eval_set(es["seed"], es["n_prompts"], folder / "prompts.jsonl", folder / "reference")
    return folder


def spec_key(spec: SystemSpec) -> str:
    """What a system's images depend on: its sampling fields and the content of its pipeline and UNet folders, so
    that a retrained toy hub or a rewritten checkpoint never reuses another model's images under the same tag."""
    fields = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("name", "label")}
    ref = zoo.resolve(spec.pipeline)
    weights = {"pipeline": sha256_tree(ref.path) if ref.kind == "local" else ref.spec}
    if spec.unet and spec.unet != "random":
        weights["unet"] = sha256_tree(spec.unet)
    return sha256_json({"fields": fields, **weights})[:16]


def fresh_eval_dir(out: Path, key: str) -> Path:
    """``out`` emptied unless it holds the images of ``key`` (its ``spec_key`` file); a folder without one is
    treated as stale."""
    marker = out / "spec_key"
    if out.exists() and (not marker.exists() or marker.read_text().strip() != key):
        shutil.rmtree(out)
    return out


def score(spec: SystemSpec, work: Path, tag: str) -> dict:
    """Sample ``spec`` on the evaluation set (its noise) and score it; cached under ``work/eval/<tag>``, keyed by
    ``spec_key`` (a stale folder under the same tag is resampled)."""
    es = eval_set(work)
    key = spec_key(spec)
    out = fresh_eval_dir(work / "eval" / tag, key)
    images = out / "images"
    if not (images / "shard.json").exists():
        generate_shard(spec, read_prompts(es / "prompts.jsonl"), images, batch_size=100, threads=1)
        with atomic_file(out / "spec_key") as f:
            f.write(key)
    res = evaluate(images, es / "reference", es / "prompts.jsonl", "toy", MODELS, work / "feature_cache",
                   out / "metrics.json", "toy:classifier-toy")  # attributes.json lands beside metrics.json
    return res["metrics"]


def paired_verdicts(system: tuple[str, Path], than: tuple[str, Path], metrics: tuple[str, ...],
                    boot: dict) -> dict:
    """``system`` against ``than`` (each a name and its metrics.json, per_image.npz beside it) on each metric, with
    the claims' paired bootstrap (``boot``: evaluation.bootstrap); metric -> claims.Verdict, positive = better."""
    sources = {system[0]: [str(system[1])], than[0]: [str(than[1])]}
    return {m: check_better({"id": f"{system[0]} vs {than[0]} ({m})", "system": system[0], "than": than[0],
                             "metric": m}, sources, boot) for m in metrics}


def paired_gains(work: Path, tag: str, than_tag: str, metrics: tuple[str, ...], boot: dict) -> dict:
    """``tag``'s gain over ``than_tag`` (both scored by ``score`` under ``work``) as flat columns per metric:
    ``<m>_gain``, ``_gain_low``, ``_gain_high``, ``_verdict``."""
    verdicts = paired_verdicts((tag, work / "eval" / tag / "metrics.json"),
                               (than_tag, work / "eval" / than_tag / "metrics.json"), metrics, boot)
    out = {}
    for m, v in verdicts.items():
        out.update({f"{m}_gain": v.difference, f"{m}_gain_low": v.low, f"{m}_gain_high": v.high,
                    f"{m}_verdict": v.verdict})
    return out


def student_spec(name: str, student: Path, cfg: dict, pipeline: str = "toy:sd-toy-turbo") -> SystemSpec:
    """The one-step system of a trained student folder (as runs.run_system builds it)."""
    if cfg.get("scheme", "full") == "full":
        sub = "unet_ema" if cfg.get("ema_decay") else "unet"
    else:
        sub = "ema" if cfg.get("ema_decay") else None
    return SystemSpec(name=name, pipeline=pipeline, kind="onestep", unet=str(student), unet_subfolder=sub,
                      steps=1, cfg=1.0, scheduler="ddpm")


def checkpoint_unet(cfg: dict, ckpt: Path, folder: Path) -> Path:
    """The student of a training checkpoint as a plain diffusers UNet folder: the init's weights with the
    checkpoint's trained tensors (a full student's weights, or a LoRA student's adapter, fused; their EMA when the
    run keeps one). Cached in ``folder`` under a key of the checkpoint's tensors, the init's content and the run's
    config (``<folder>.source_key`` beside it, so the folder stays a pure save_pretrained one): a checkpoint
    rewritten by another run under the same path is exported again, never served stale."""
    from sb2bench._infra.atomic import atomic_dir
    from sb2bench._infra.hashing import sha256_file
    from sb2bench.train import checkpoint, lora
    from sb2bench.train.config import TrainConfig

    c = TrainConfig.from_dict(cfg)
    which = "ema" if c.ema_decay else "student"  # as student_spec picks unet_ema / ema for an EMA run
    key = sha256_json({"tensors": sha256_file(ckpt / f"{which}.safetensors"), "init": zoo.describe(c.student_init),
                       "init_subfolder": c.student_init_subfolder, "config": c.semantic_hash()})[:16]
    marker = folder.parent / f"{folder.name}.source_key"
    if (folder / "config.json").exists() and marker.exists() and marker.read_text().strip() == key:
        return folder
    unet = zoo.load_unet(c.student_init, c.student_init_subfolder or None)
    tensors, _, _ = checkpoint.read(ckpt)
    if c.scheme == "full":
        unet.requires_grad_(True)
    else:
        lora.add_lora(unet, lora.STUDENT_ADAPTER, c.student_lora_rank, c.student_lora_alpha, c.student_lora_targets)
    lora.load_trainable(unet, tensors[which], f"{which} of {ckpt}")
    if c.scheme != "full":
        unet = lora.fused_copy(unet, lora.STUDENT_ADAPTER)
    with atomic_dir(folder) as tmp:
        unet.save_pretrained(str(tmp))
    with atomic_file(marker) as f:  # written after the folder: a kill in between only costs a re-export
        f.write(key)
    return folder


def merge_report(report: Path, benchmark: str, new: dict, write_md: Callable[[dict], None]) -> None:
    """Merge ``new`` rows (each with this invocation's command line) into ``report``.json and rewrite its .md from
    all rows, under a lock: several invocations of one bench may run side by side (e.g. one per setting)."""
    path = report.with_suffix(".json")
    with open(Path(tempfile.gettempdir()) / f"sb2bench_{benchmark}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(path.read_text())["results"] if path.exists() else {}
        rows.update({k: {**v, "argv": sys.argv[1:]} for k, v in new.items()})
        write_json(path, record(benchmark=benchmark, results=rows))
        write_md(rows)


def write_md_with_notes(report: Path, lines: list[str]) -> None:
    """Write ``report``.md from ``lines``, then the hand-written ``report``.notes.md (what a run showed) after it,
    so that rerunning a bench refreshes its figures without losing the reading of them."""
    notes = report.with_suffix(".notes.md")
    with atomic_file(report.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
        if notes.exists():
            f.write("\n" + notes.read_text())
