"""Training runs declared in config: their resolved run configs and the systems their students become.

A run names its initialisation (``turbo`` = SwiftBrush v2, ``teacher`` = SwiftBrush v1, ``run:NAME`` =
another run's full student, as in SBv2 Table 7, or any model spec) and overrides run-config keys
(``sb2bench.train.TrainConfig``) over ``training.defaults``. Its student is then sampled and scored
like any configured system, with the initialisation's pipeline supplying VAE, text encoder and scheduler.
"""
from __future__ import annotations

from pathlib import Path

from sb2bench.plan.paths import TOY_TRAIN_PROMPTS, UNET, reg_pairs_dir, student_dir, student_subfolder
from sb2bench.train.config import TrainConfig
from sb2bench.train.warmup import warmup_key


def uses_shared_reg_pairs(config: dict, run: dict) -> bool:
    """A regularised run without its own pairs folder trains on the DAG's (rule reg_pairs)."""
    cfg = merged_keys(config, run)
    weight = cfg.get("reg_weight", 0)
    return isinstance(weight, (int, float)) and weight > 0 and not cfg.get("reg_pairs")


def train_prompts(config: dict, results: str) -> str:
    p = config["training"]["prompts"]
    return f"{results}/{TOY_TRAIN_PROMPTS}" if p == "toy_train" else p


def replica_name(name: str, seed: int) -> str:
    return f"{name}-seed{seed}"


def expand_seed_replicas(config: dict) -> list[dict]:
    """``training.runs`` with every run that lists ``seeds`` repeated per seed: the run itself trains the
    first seed and replica ``NAME-seedS`` each further one (all of them only when ``training.seed_replicas``);
    a replica is an ordinary run, so it is trained, sampled and scored like any other."""
    from sb2bench.plan.errors import ConfigError

    # a replica's name is reserved even where replicas are off, so a tier that trains them cannot collide
    reserved = {replica_name(r["name"], s) for r in config["training"]["runs"] for s in (r.get("seeds") or [])[1:]}
    taken = sorted(reserved & {r["name"] for r in config["training"]["runs"]})
    if taken:
        raise ConfigError(f"config key training.runs: duplicate run names {taken}: each is also the name of a seed "
                          f"replica (NAME-seedS of a run that lists seeds); rename the run")
    out = []
    for run in config["training"]["runs"]:
        seeds = run.get("seeds") or []
        if not seeds:
            out.append(run)
            continue
        if "seed" in run.get("config", {}):
            raise ConfigError(f"config key training.runs[{run['name']}]: give the seed either as seeds or as "
                              f"config.seed, not both")
        out.append({**run, "config": {**run["config"], "seed": seeds[0]}})
        if config["training"].get("seed_replicas", True):
            for seed in seeds[1:]:
                out.append({**run, "name": replica_name(run["name"], seed), "seeds": None, "replica_of": run["name"],
                            "label": f"{run.get('label') or run['name']} (seed {seed})",
                            "config": {**run["config"], "seed": seed}})
    return out


def seed_groups(runs: list[dict]) -> dict[str, list[str]]:
    """Run name -> the names of its seed replicas, itself first (only runs that have replicas)."""
    groups: dict[str, list[str]] = {}
    for r in runs:
        if r.get("replica_of"):
            groups.setdefault(r["replica_of"], [r["replica_of"]]).append(r["name"])
    return groups


def _runs(config: dict) -> dict[str, dict]:
    return {r["name"]: r for r in config["training"]["runs"]}


def _init(config: dict, run: dict, results: str) -> tuple[str, str, str]:
    """(student_init spec, its UNet subfolder, pipeline of the student's other components)."""
    init = run["init"]
    if init in ("turbo", "teacher"):
        spec = config["models"][init]
        return spec, UNET, spec
    if init.startswith("run:"):
        parent = _runs(config)[init[4:]]
        sub = student_subfolder("full", bool(merged_keys(config, parent).get("ema_decay")))  # parents are full
        return student_dir(results, parent["name"]), sub, _init(config, parent, results)[2]
    return init, UNET, init


def merged_keys(config: dict, run: dict) -> dict:
    keys = {**config["training"]["defaults"], **run["config"]}
    if config["training"].get("max_steps_override"):
        keys["max_steps"] = config["training"]["max_steps_override"]
    return keys


def resolve_run(config: dict, run: dict, results: str) -> dict:
    """The full run config handed to ``sb2bench train`` (models and paths filled in)."""
    cfg = merged_keys(config, run)
    init, sub, _ = _init(config, run, results)
    cfg.setdefault("teacher", config["models"]["teacher"])
    cfg.setdefault("student_init", init)
    cfg.setdefault("student_init_subfolder", sub)
    cfg.setdefault("prompts", train_prompts(config, results))
    cfg.setdefault("text_embedding_cache", f"{results}/cache/text_embeddings")
    if cfg.get("clip_loss", "none") != "none":
        cfg.setdefault("clip_model", config["models"]["clip"])
    if uses_shared_reg_pairs(config, run):
        cfg["reg_pairs"] = reg_pairs_dir(results)
    weight = cfg.get("hps_loss_weight", 0)
    if isinstance(weight, (int, float)) and weight > 0:  # the evaluation's own HPS scorer
        hps = config["evaluation"]["hps"]
        cfg.setdefault("hps_model", config["models"]["hps"])
        cfg.setdefault("hps_checkpoint", hps.get("checkpoint"))
        cfg.setdefault("hps_version", hps.get("version", "v2.1"))
    return cfg


def lora_warmups(config: dict, results: str, processes: int) -> dict[str, list[str]]:
    """Warm-up key -> the runs that share that LoRA-teacher warm-up, in config order: the rule lora_warmup
    computes each key once and its runs load it (``lora_warmup_from``). Only runs that warm up
    (``lora_warmup_steps`` > 0) in one process (``processes``: GPUs per training job; a warm-up is one
    random stream), and none when ``training.share_lora_warmup`` is false."""
    if not config["training"].get("share_lora_warmup", True) or processes > 1:
        return {}
    groups: dict[str, list[str]] = {}
    for run in config["training"]["runs"]:
        cfg = TrainConfig.from_dict(resolve_run(config, run, results))
        if cfg.lora_warmup_steps > 0:
            groups.setdefault(warmup_key(cfg), []).append(run["name"])
    return groups


def run_system(config: dict, run: dict, results: str) -> dict:
    """The sampling spec of a run's student (a one-step system)."""
    cfg = TrainConfig.from_dict(resolve_run(config, run, results))
    sub = student_subfolder(cfg.scheme, bool(cfg.ema_decay))
    return {"name": run["name"], "label": run.get("label") or run["name"], "kind": "onestep",
            "pipeline": _init(config, run, results)[2], "unet": student_dir(results, run["name"]),
            "unet_subfolder": sub, "steps": 1, "cfg": 1.0, "scheduler": "ddpm", "seed": 0}


def check_runs(config: dict, results: str) -> None:
    """Names unique and distinct from systems, ``run:`` parents exist, are full students and form no
    cycle, and every resolved run config is valid -- all before any job starts."""
    from sb2bench.data.prompt_sources import PromptSourceError, check_sources, configured_builds
    from sb2bench.plan.errors import ConfigError

    try:
        check_sources(config)
    except PromptSourceError as exc:
        raise ConfigError(str(exc)) from exc
    built = configured_builds(config)  # prompt files the DAG builds from training.prompt_sources
    runs = _runs(config)
    if runs and config["world"] != "toy" and config["training"]["prompts"] == "toy_train":
        raise ConfigError("config key training.prompts: 'toy_train' exists only in the toy world; give a JSON "
                          "Lines prompt file (e.g. JourneyDB captions)")
    names = [r["name"] for r in config["training"]["runs"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key training.runs: duplicate run names {sorted({n for n in names if names.count(n) > 1})}")
    clash = set(names) & {s["name"] for s in config["teacher_sampling"]["systems"]} | (set(names) & {"reference"})
    if clash:
        raise ConfigError(f"config key training.runs: {sorted(clash)} also name systems; a run's student is "
                          f"evaluated as a system of the same name, so pick distinct names")
    for r in config["training"]["runs"]:
        key = f"training.runs[{r['name']}]"
        seen, cur = {r["name"]}, r
        while cur["init"].startswith("run:"):
            parent = cur["init"][4:]
            if parent not in runs:
                raise ConfigError(f"config key {key}.init: run {parent!r} is not declared in training.runs")
            if parent in seen:
                raise ConfigError(f"config key {key}.init: runs initialise each other in a cycle {sorted(seen)}")
            if merged_keys(config, runs[parent]).get("scheme", "full") != "full":
                raise ConfigError(f"config key {key}.init: run {parent!r} is a LoRA student; initialise from a "
                                  f"full student (or merge it first)")
            seen.add(parent)
            cur = runs[parent]
        try:
            TrainConfig.from_dict(resolve_run(config, r, results))
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"config key {key}.config: {exc}") from exc
        prompts = resolve_run(config, r, results)["prompts"]
        if prompts != train_prompts(config, results) or config["training"]["prompts"] != "toy_train":
            if prompts not in built and not Path(prompts).expanduser().is_file():  # the toy stream: by the DAG too
                raise ConfigError(f"config key {key}: its training prompts {prompts} do not exist; give a JSON "
                                  f"Lines file of {{\"index\": i, \"caption\": ...}} rows (training.prompts or the "
                                  f"run's config.prompts)")
