"""Every model a config names, resolved offline before any job: all missing pieces listed at once.

A run that finds a missing hub weight hours in (the first job that loads it) wastes the jobs before it and
says nothing of the others. This check looks each spec up where the loaders will (sb2bench/models/zoo.py): a toy
model in the toy hub, a local folder or file on disk, a Hugging Face hub id in the local cache
(``huggingface_hub.try_to_load_from_cache``: no network, no torch), an open_clip ``ARCH:TAG`` in the cache
under the repository open_clip's pretrained table names (read from open_clip's source, not imported: the
Snakefile calls this at parse time). Every missing piece comes with the command that fetches it.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from sb2bench.models import zoo
from sb2bench.plan.errors import ConfigError
from sb2bench.plan.runs import resolve_run

# The files a diffusers component needs, as groups of (preferred file, alternatives): one file of each group.
_WEIGHTS = ("diffusion_pytorch_model.safetensors", ("diffusion_pytorch_model.bin",))
COMPONENTS = {
    "unet": [("config.json", ()), _WEIGHTS],
    "vae": [("config.json", ()), _WEIGHTS],
    "text_encoder": [("config.json", ()), ("model.safetensors", ("pytorch_model.bin",))],
    # zoo.load_tokenizer: vocab.json + merges.txt, or tokenizer.json; tokenizer_config.json holds the pad token
    "tokenizer": [("tokenizer_config.json", ()), ("vocab.json", ("tokenizer.json",)), ("merges.txt", ("tokenizer.json",))],
    "scheduler": [("scheduler_config.json", ())],
}
PIPELINE = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
OPEN_CLIP_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # open_clip tries them in order
HPS_REPO = "xswu/HPSv2"  # where hpsv2 downloads its checkpoints from
HPS_FILES = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}


@dataclass(frozen=True)
class Need:
    """One model a config uses: the config key naming it, its spec and what kind of model it must be."""

    key: str
    spec: str
    kind: str  # "pipeline" | "unet" | "model" (one diffusers model at the root) | "open_clip" | "hps" | "file"
    extra: str = ""  # hps: the checkpoint folder
    version: str = "v2.1"  # hps: which checkpoint file (HPS_FILES)


@dataclass(frozen=True)
class Missing:
    key: str
    spec: str
    what: str
    fetch: str


def needs(config: dict, results: str = "results/real") -> list[Need]:
    """The models the DAG of ``config`` loads, each with the first config key that names it."""
    out: list[Need] = []
    models, evaluated = config["models"], config["teacher_sampling"]["prompts"] in ("toy_eval", "coco")
    out.append(Need("models.teacher", models["teacher"], "pipeline"))
    for s in config["teacher_sampling"]["systems"]:
        for field, kind in (("pipeline", "pipeline"), ("unet", "unet")):
            if isinstance(s.get(field), str) and s[field] != "random":
                out.append(Need(f"teacher_sampling.systems[{s['name']}].{field}", s[field], kind))
    for run in config["training"]["runs"]:
        cfg, key = resolve_run(config, run, results), f"training.runs[{run['name']}]"
        if not str(run["init"]).startswith("run:"):
            out.append(Need(f"{key}.init", cfg["student_init"], "pipeline"))
        if cfg.get("clip_loss", "none") != "none" and cfg.get("clip_model"):
            out.append(Need(f"{key}.clip_model", cfg["clip_model"], "open_clip"))
        if (cfg.get("clip_loss", "none") != "none" or cfg.get("hps_loss_weight", 0) > 0) and cfg.get("clip_decoder"):
            out.append(Need(f"{key}.clip_decoder", cfg["clip_decoder"], "model"))
        if cfg.get("hps_loss_weight", 0) > 0 and cfg.get("hps_model"):
            out.append(Need(f"{key}.hps_model", cfg["hps_model"], "hps" if cfg.get("hps_checkpoint") else "open_clip",
                            cfg.get("hps_checkpoint") or "", cfg.get("hps_version", "v2.1")))
    if evaluated:
        out.append(Need("models.feature_net", models["feature_net"], "file"))
        out.append(Need("models.clip", models["clip"], "open_clip"))
        hps = config["evaluation"]["hps"]
        if hps["enabled"]:
            out.append(Need("models.hps", models["hps"], "hps" if hps.get("checkpoint") else "open_clip",
                            hps.get("checkpoint") or "", hps.get("version", "v2.1")))
    if config["world"] == "toy" and models.get("classifier"):
        out.append(Need("models.classifier", models["classifier"], "file"))
    seen, unique = set(), []
    for n in out:
        if (n.spec, n.kind, n.extra, n.version) not in seen:
            seen.add((n.spec, n.kind, n.extra, n.version))
            unique.append(n)
    return unique


def _cached(repo: str, filename: str, revision: str | None, cache_dir: str | None) -> bool:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=cache_dir, revision=revision)
    return isinstance(found, str) and os.path.exists(found)


def _hf(repo: str, revision: str | None, files: list[str]) -> str:
    rev = f" --revision {shlex.quote(revision)}" if revision else ""
    return f"hf download {shlex.quote(repo)}{rev} " + " ".join(shlex.quote(f) for f in files)


def _missing_files(repo: str, revision: str | None, groups: list[tuple[str, tuple[str, ...]]],
                   cache_dir: str | None) -> list[str]:
    """For each (preferred file, alternatives) group none of whose files is cached: the preferred file."""
    return [first for first, alts in groups
            if not any(_cached(repo, f, revision, cache_dir) for f in (first, *alts))]


def _component_groups(prefix: str, component: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(prefix + first, tuple(prefix + a for a in alts)) for first, alts in COMPONENTS[component]]


def open_clip_repo(arch: str, tag: str) -> str | None:
    """The hub repository open_clip downloads ``arch:tag`` from, read from open_clip's pretrained table
    (its source, parsed: importing open_clip imports torch and torchvision, too slow at parse time)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    tree = ast.parse((Path(list(spec.submodule_search_locations)[0]) / "pretrained.py").read_text())
    tables: dict[str, ast.AST] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            tables[node.targets[0].id] = node.value
    registry = tables.get("_PRETRAINED")
    if not isinstance(registry, ast.Dict):
        return None
    for k, v in zip(registry.keys, registry.values):
        if isinstance(k, ast.Constant) and k.value == arch and isinstance(v, ast.Name):
            table = tables.get(v.id)
            if isinstance(table, ast.Call):
                for kw in table.keywords:
                    if kw.arg == tag.replace("-", "_").lower() and isinstance(kw.value, ast.Call):
                        for inner in kw.value.keywords:
                            if inner.arg == "hf_hub" and isinstance(inner.value, ast.Constant):
                                return inner.value.value.rstrip("/") or None
    return None


def clean_fid_inception_url() -> str:
    """The URL clean-fid downloads its Inception from (its ``inception_url``, read from its source)."""
    import re

    spec = importlib.util.find_spec("cleanfid")
    if spec is not None and spec.submodule_search_locations:
        source = Path(list(spec.submodule_search_locations)[0]) / "downloads_helper.py"
        found = re.search(r'^inception_url\s*=\s*"([^"]+)"', source.read_text(), re.M) if source.is_file() else None
        if found:
            return found.group(1)
    return "<the inception_url of clean-fid's downloads_helper.py>"


def _check(need: Need, retrained_toy: bool, cache_dir: str | None) -> list[Missing]:
    spec = need.spec
    miss = lambda what, fetch: [Missing(need.key, spec, what, fetch)]  # noqa: E731
    if need.kind == "open_clip":
        arch, sep, tag = spec.partition(":")
        if arch == "toy":
            return _check(Need(need.key, spec, "model"), retrained_toy, cache_dir)
        if not sep:  # a local open_clip folder, or a bare architecture (a toy stand-in without checkpoint)
            is_path = "/" in spec or spec.startswith((".", "~"))
            return miss(f"open_clip folder {spec}", f"copy the folder to {spec}") if is_path and not Path(
                os.path.expanduser(spec)).exists() else []
        if tag.startswith(("/", ".", "~")):
            path = Path(os.path.expanduser(tag))
            return [] if path.is_file() else miss(f"open_clip checkpoint file {path}",
                                                  f"copy the checkpoint to {path}")
        repo = open_clip_repo(arch, tag)
        if repo is None:
            return miss(f"open_clip has no pretrained tag {tag!r} for {arch!r} (is open_clip installed?)",
                        "use a tag listed by open_clip.list_pretrained(), or ARCH:/path/to/checkpoint")
        if any(_cached(repo, f, None, cache_dir) for f in OPEN_CLIP_FILES):
            return []
        return miss(f"open_clip weights of {spec} (hub {repo}, {' or '.join(OPEN_CLIP_FILES)})",
                    _hf(repo, None, [OPEN_CLIP_FILES[0]]))
    if need.kind == "hps":
        name = HPS_FILES.get(need.version, HPS_FILES["v2.1"])
        return [] if (Path(need.extra) / name).is_file() else miss(
            f"HPS {need.version} checkpoint {Path(need.extra) / name}",
            _hf(HPS_REPO, None, [name]) + f" --local-dir {shlex.quote(need.extra)}")
    if spec.startswith("toy:"):
        if retrained_toy:
            return []  # built by the DAG (rule toy hub) before any job loads it
        try:
            zoo.resolve(spec)
        except zoo.ModelNotFoundError as exc:
            return miss("toy model", str(exc))
        return []
    if need.kind == "file":  # a local file or folder only (zoo._local_only)
        if Path(os.path.expanduser(spec)).exists():
            return []
        if Path(spec).name == "inception-2015-12-05.pt":
            return miss(f"clean-fid's Inception file {spec}",
                        f"curl -L --create-dirs -o {shlex.quote(spec)} {clean_fid_inception_url()}")
        return miss(f"local file or folder {spec}", f"copy it to {spec}")
    try:
        ref = zoo.resolve(spec)
    except zoo.ModelNotFoundError:
        return miss(f"local folder {spec}", f"copy it to {spec}, or give a hub id (org/name) instead")
    if ref.kind == "local":
        return []
    repo, rev = ref.location, ref.revision
    if need.kind == "pipeline":
        groups = [("model_index.json", ())]
        for c in PIPELINE:
            groups += _component_groups(f"{c}/", c)
    elif need.kind == "unet":
        subfolder = "unet/" if _cached(repo, "unet/config.json", rev, cache_dir) or not _cached(
            repo, "config.json", rev, cache_dir) else ""
        groups = _component_groups(subfolder, "unet")
    else:  # one diffusers model at the repository's root (e.g. madebyollin/taesd)
        groups = _component_groups("", "vae")
    files = _missing_files(repo, rev, groups, cache_dir)
    return miss(f"hub files {', '.join(files)}", _hf(repo, rev, files)) if files else []


def missing_weights(config: dict, results: str = "results/real", cache_dir: str | None = None) -> list[Missing]:
    """Every missing piece of every model the config uses (none: all present)."""
    retrained = config["world"] == "toy" and config.get("toy", {}).get("hub") == "retrain"
    out: list[Missing] = []
    for need in needs(config, results):
        out += _check(need, retrained, cache_dir)
    return out


def check_weights(config: dict, results: str = "results/real", cache_dir: str | None = None,
                  warn_only: bool = False) -> list[Missing]:
    """Refuse a config whose models are not all here, listing every missing piece with its fetch command
    (``warn_only``: print the list to stderr instead, as a dry run does). Returns the missing pieces."""
    import sys

    missing = missing_weights(config, results, cache_dir)
    if missing:
        lines = [f"- {m.key} = {m.spec}: missing {m.what}\n    fetch: {m.fetch}" for m in missing]
        cache = cache_dir or os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
        text = (f"{len(missing)} model weight(s) are missing (checked offline; Hugging Face cache: {cache}). Fetch "
                f"them on a machine with internet, then copy the cache here or set HF_HOME to it "
                f"(docs/paper_scale.md):\n" + "\n".join(lines))
        if not warn_only:
            raise ConfigError(text)
        print(f"WARNING (a real run stops here): {text}", file=sys.stderr)
    return missing
