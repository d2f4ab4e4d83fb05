"""Which systems are scored on the same prompts and noise: a claim compares only those (a paired design).

A claim's verdict comes from a paired bootstrap of the difference between its systems
(``sb2bench.report.claims``): image i of one system and image i of the other share prompt i and initial
noise (seed, i). That holds only when both were sampled on the same prompt set, with the same sampling
seed, and scored on the same number of prompts. This module derives that *scoring key* of every system from
the config and refuses, at validation time, a claim whose systems differ in it, naming the claim
(``sb2bench.plan.config`` raises it as a ConfigError; this module imports nothing of the package, so it adds
no import cycle).
"""
from __future__ import annotations

PAIRED_METRICS = {"fid", "kid", "precision", "recall", "clip_score", "attribute_accuracy"}


class PairingError(ValueError):
    """A claim that cannot be judged on a paired design; the message names the config key."""


def prompt_set(config: dict) -> dict:
    """The evaluation prompt set every system samples: its source, size and seed."""
    prompts = config["teacher_sampling"]["prompts"]
    if prompts == "toy_eval":
        es = config["toy"]["eval_set"]
        return {"prompts": "toy_eval", "n_prompts": es["n_prompts"], "seed": es["seed"]}
    if prompts == "coco":
        return {"prompts": "coco", "n_prompts": config["evaluation"]["coco"]["n_prompts"]}
    return {"prompts": prompts}


def claim_systems(config: dict, merge_points: dict[str, list[str]]) -> dict[str, list[str]]:
    """Claim id -> the systems it compares (a merge claim: every λ of its sweep)."""
    return {c["id"]: [c["system"], c["than"]] if c["kind"] == "better" else merge_points[c["merge"]]
            for c in config.get("claims", [])}


def full_set_systems(config: dict, merge_points: dict[str, list[str]], replicas: dict[str, list[str]]) -> set[str]:
    """Systems sampled on the whole evaluation set and scored on it as well as on the subset
    (``evaluation.subset``); ``replicas``: run -> its seed replicas, which follow their run."""
    sub = config["evaluation"].get("subset") or {}
    if sub.get("n_prompts") is None:
        return set()
    chosen = set(sub.get("full_systems") or [])
    if sub.get("full_for_claims"):
        chosen |= {n for names in claim_systems(config, merge_points).values() for n in names}
    return chosen | {r for name in chosen for r in replicas.get(name, [])}


def subset_size(config: dict) -> int | None:
    """How many prompts every system's standard metrics are scored on (None: the whole set): the subset's
    size, so tables and claims compare like with like, FID's bias with n included."""
    return (config["evaluation"].get("subset") or {}).get("n_prompts")


def sampled_prompts(config: dict, name: str, full: set[str]) -> int | None:
    """How many prompts of the set ``name`` is sampled on (None: all of them)."""
    return None if name in full else subset_size(config)


def whole_set_claim(names: list[str], full: set[str]) -> bool:
    """A claim pairs on the whole set when every system it compares (seed replicas included) was scored
    there; otherwise on the subset, which every system is scored on."""
    return bool(full) and all(n in full for n in names)


def scoring_key(config: dict, spec: dict, n_prompts: int | None = None) -> dict:
    """What must agree between two systems for their images to pair up: prompt set, number of prompts
    scored (``n_prompts``: a subset's size) and the initial-noise seed (``spec``: its sampling spec)."""
    key = prompt_set(config)
    if n_prompts is not None:  # scored on the first n prompts of the set only
        key["n_prompts"] = n_prompts
    return {**key, "noise_seed": spec.get("seed", 0)}


def check_subset(config: dict, systems: set[str]) -> None:
    """evaluation.subset names known systems and is smaller than the set."""
    sub = config["evaluation"].get("subset") or {}
    unknown = sorted(set(sub.get("full_systems") or []) - systems)
    if unknown and sub.get("n_prompts") is not None:
        raise PairingError(f"config key evaluation.subset.full_systems: {unknown} are not configured systems, runs "
                           f"or merge points; list this config's headline systems, or set evaluation.subset.n_prompts: "
                           f"null (a config over config/default.yaml with other systems inherits its toy subset)")
    size = prompt_set(config).get("n_prompts")
    if sub.get("n_prompts") is not None and size is not None and sub["n_prompts"] >= size:
        raise PairingError(f"config key evaluation.subset.n_prompts: {sub['n_prompts']} is not below the evaluation "
                           f"set's {size} prompts; lower it or set it to null")


def check_claims_paired(config: dict, specs: dict[str, dict], merge_points: dict[str, list[str]],
                        replicas: dict[str, list[str]]) -> None:
    """Every claim's systems share a scoring key, its metric has per-image values and bootstrap resamples
    are configured (``specs``: system name -> sampling spec, runs and merge points included;
    ``merge_points``: merge name -> its systems, one per λ; ``replicas``: run -> its seed replicas)."""
    check_subset(config, set(specs))
    full = full_set_systems(config, merge_points, replicas)
    compared = claim_systems(config, merge_points)
    claims = config.get("claims", [])
    if claims and config["evaluation"]["bootstrap"]["n_boot"] < 2:
        raise PairingError(f"config key evaluation.bootstrap.n_boot: {config['evaluation']['bootstrap']['n_boot']}, but "
                          f"claims are judged on a paired bootstrap; set it to e.g. 200 (or remove claims:)")
    for c in claims:
        key = f"claims[{c['id']}]"
        if c["metric"] not in PAIRED_METRICS:
            raise PairingError(f"config key {key}.metric: {c['metric']} has no per-image values to pair (HPS is "
                              f"scored on its own prompt sets); claim one of {sorted(PAIRED_METRICS)}")
        if c["metric"] == "kid" and config["world"] != "toy":
            raise PairingError(f"config key {key}.metric: a paired KID needs the reference features, which are "
                               f"stored beside the metrics in the toy world only; claim fid instead")
        names = compared[c["id"]]
        names += [r for n in names for r in replicas.get(n, [])]
        n_scored = None if whole_set_claim(names, full) else subset_size(config)
        keys = {n: scoring_key(config, specs[n], n_scored) for n in names}
        first = names[0]
        for n in names[1:]:
            if keys[n] != keys[first]:
                diff = {k: (keys[first].get(k), keys[n].get(k)) for k in keys[first].keys() | keys[n].keys()
                        if keys[first].get(k) != keys[n].get(k)}
                what = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in sorted(diff.items()))
                raise PairingError(f"config key {key}: {first} and {n} are not scored on the same prompts and noise "
                                  f"({what}), so the claim cannot be paired; give both the same sampling seed and "
                                  f"evaluation prompts")
