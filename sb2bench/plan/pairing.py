"""Which systems are scored on the same prompts and noise: a claim compares only those (a paired design).

A claim's verdict comes from a paired bootstrap of the difference between its systems
(``sb2bench.report.claims``): image i of one system and image i of the other share prompt i and initial
noise (seed, i). That holds only when both were sampled on the same prompt set, with the same sampling
seed, and scored on the same number of prompts. This module derives that *scoring key* of every system from
the config and refuses, at validation time, a claim whose systems differ in it, naming the claim
(``sb2bench.config`` raises it as a ConfigError; this module imports nothing of the package, so it adds
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


def scoring_key(config: dict, spec: dict) -> dict:
    """What must agree between two systems for their images to pair up: prompt set, number of prompts
    scored and the initial-noise seed (``spec``: the system's sampling spec)."""
    key = prompt_set(config)
    if spec.get("n_prompts"):  # scored on the first n prompts of the set only
        key["n_prompts"] = spec["n_prompts"]
    return {**key, "noise_seed": spec.get("seed", 0)}


def check_claims_paired(config: dict, specs: dict[str, dict], merge_points: dict[str, list[str]]) -> None:
    """Every claim's systems share a scoring key, its metric has per-image values and bootstrap resamples
    are configured (``specs``: system name -> sampling spec, runs and merge points included;
    ``merge_points``: merge name -> its systems, one per λ)."""
    claims = config.get("claims", [])
    if claims and config["evaluation"]["bootstrap"]["n_boot"] < 2:
        raise PairingError(f"config key evaluation.bootstrap.n_boot: {config['evaluation']['bootstrap']['n_boot']}, but "
                          f"claims are judged on a paired bootstrap; set it to e.g. 200 (or remove claims:)")
    for c in claims:
        key = f"claims[{c['id']}]"
        if c["metric"] not in PAIRED_METRICS:
            raise PairingError(f"config key {key}.metric: {c['metric']} has no per-image values to pair (HPS is "
                              f"scored on its own prompt sets); claim one of {sorted(PAIRED_METRICS)}")
        if c["kind"] == "better":
            names = [c["system"], c["than"]]
        else:
            names = merge_points[c["merge"]]
        keys = {n: scoring_key(config, specs[n]) for n in names}
        first = names[0]
        for n in names[1:]:
            if keys[n] != keys[first]:
                diff = {k: (keys[first].get(k), keys[n].get(k)) for k in keys[first].keys() | keys[n].keys()
                        if keys[first].get(k) != keys[n].get(k)}
                what = ", ".join(f"{k} {a!r} vs {b!r}" for k, (a, b) in sorted(diff.items()))
                raise PairingError(f"config key {key}: {first} and {n} are not scored on the same prompts and noise "
                                  f"({what}), so the claim cannot be paired; give both the same sampling seed and "
                                  f"evaluation prompts")
