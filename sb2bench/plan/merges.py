"""Merge sweeps declared in config: θ = λ·θ_A + (1 − λ)·θ_B on a λ grid, each merge a one-step system.

An input is ``run:NAME`` (a training run's student: its EMA weights when it has them; a LoRA student
is fused into its base by ``sb2bench.models.lora``) or any model spec of a UNet (e.g. ``toy:sd-toy-turbo``
for Figure 3's SD-Turbo end). The merged systems take the pipeline (VAE, text encoder, scheduler) of
``pipeline`` or, by default, of input A.
"""
from __future__ import annotations

from sb2bench.plan.paths import lam_name, merge_dir, merge_sweep_dir, student_dir, student_weights
from sb2bench.plan.runs import merged_keys, run_system


def merge_system_name(merge: dict, lam: float) -> str:
    return f"{merge['name']}-{lam_name(lam)}"


def merge_out(results: str, merge: dict, lam: float) -> str:
    return merge_dir(results, merge["name"], lam)


def sweep_out(results: str, merge: dict) -> str:
    """The folder the merge job writes: every λ of the sweep (Snakemake's output; systems read a λ inside)."""
    return merge_sweep_dir(results, merge["name"])


def merge_system_sweeps(config: dict, results: str) -> dict[str, str]:
    """Merged system name -> the sweep folder whose job writes its UNet (the file a sampling job waits for)."""
    return {merge_system_name(m, lam): sweep_out(results, m) for m in config["merges"] for lam in m["lambdas"]}


def input_spec(config: dict, value: str, results: str) -> str:
    """The folder/spec sb2bench.models.lora.load_fused_unet reads for a merge input."""
    if not value.startswith("run:"):
        return value
    run = {r["name"]: r for r in config["training"]["runs"]}[value[4:]]
    keys = merged_keys(config, run)
    return student_weights(student_dir(results, run["name"]), keys.get("scheme", "full"), bool(keys.get("ema_decay")))


def input_pipeline(config: dict, value: str, results: str) -> str:
    if value.startswith("run:"):
        run = {r["name"]: r for r in config["training"]["runs"]}[value[4:]]
        return run_system(config, run, results)["pipeline"]
    return config["models"]["turbo"]


def merge_systems(config: dict, results: str) -> dict[str, dict]:
    out = {}
    for m in config["merges"]:
        pipeline = m.get("pipeline") or input_pipeline(config, m["a"], results)
        for lam in m["lambdas"]:
            name = merge_system_name(m, lam)
            out[name] = {"name": name, "label": f"{m.get('label') or m['name']}, λ = {lam_name(lam)}",
                         "kind": "onestep", "pipeline": pipeline, "unet": merge_out(results, m, lam),
                         "unet_subfolder": None, "steps": 1, "cfg": 1.0, "scheduler": "ddpm", "seed": 0}
    return out


def check_merges(config: dict) -> None:
    """Inputs exist (runs declared, specs resolvable), names unique; λ ∈ [0, 1] is the schema's job."""
    from sb2bench.models import zoo
    from sb2bench.plan.errors import ConfigError

    runs = {r["name"] for r in config["training"]["runs"]}
    names = [m["name"] for m in config["merges"]]
    if len(set(names)) != len(names):
        raise ConfigError(f"config key merges: duplicate merge names {sorted({n for n in names if names.count(n) > 1})}")
    taken = runs | {s["name"] for s in config["teacher_sampling"]["systems"]}
    for m in config["merges"]:
        key = f"merges[{m['name']}]"
        for side in ("a", "b"):
            v = m[side]
            if v.startswith("run:") and v[4:] not in runs:
                raise ConfigError(f"config key {key}.{side}: run {v[4:]!r} is not declared in training.runs")
            if not v.startswith("run:") and not (v.startswith("toy:") and config["toy"]["hub"] == "retrain"):
                try:
                    zoo.resolve(v)
                except zoo.ModelNotFoundError as exc:
                    raise ConfigError(f"config key {key}.{side}: {exc}") from exc
        clash = {merge_system_name(m, lam) for lam in m["lambdas"]} & taken
        if clash:
            raise ConfigError(f"config key {key}: system names {sorted(clash)} are taken; rename the merge")
