"""Where results live: the one owner of ``results/{world}`` paths and of a student folder's layout.

The workflow (rules/common.smk), the planning modules, the exporter that writes a student
(``sb2bench.train.export``) and the loaders that read one (``sb2bench.models.lora``) all take these
names from here, so a path or folder name changes in one place. Imports nothing heavy (no torch):
Snakemake reads it at parse time.

A student folder (``results/{world}/runs/{run}/student``)::

    unet/                              full student, diffusers save_pretrained     [scheme full]
    unet_ema/                          its EMA weights                             [full + ema_decay]
    pytorch_lora_weights.safetensors   LoRA student, diffusers keys                [scheme lora]
    lora_config.json                   names the LoRA's base UNet (rank, alpha, targets)
    ema/                               the LoRA student's EMA weights, same files  [lora + ema_decay]
    lora_teacher/                      the VSD fake score's LoRA (for analysis)

A merge sweep (``results/{world}/merges/{merge}``, one job writes it whole)::

    lambda-0/ lambda-0.5/ lambda-1/    merged UNet per λ, diffusers save_pretrained + merge.json
"""
from __future__ import annotations

STUDENT = "student"          # a run's final folder, beside its checkpoints/ and log.csv
UNET = "unet"                # a pipeline's UNet subfolder; a full student's weights
UNET_EMA = "unet_ema"        # a full student's EMA weights
LORA_EMA = "ema"             # a LoRA student's EMA adapter folder
LORA_TEACHER = "lora_teacher"
LORA_WEIGHTS = "pytorch_lora_weights.safetensors"
LORA_CONFIG = "lora_config.json"
TOY_TRAIN_PROMPTS = "data/train/prompts.jsonl"


def results_dir(world: str) -> str:
    """``results/{world}``: the root of every artifact the workflow writes (its RESULTS)."""
    return f"results/{world}"


def config_results(config: dict) -> str:
    """The results root of a validated config."""
    return results_dir(config["world"])


def reports_dir(config: dict) -> str:
    """``reports/{tier}`` when the config names a tier (``report.tier``), else ``reports/{world}``: tiers of one
    world share results/{world}/ (and so each other's finished jobs) but keep their reports apart."""
    return f"reports/{(config.get('report') or {}).get('tier') or config['world']}"


def toy_hub_dir() -> str:
    """Where ``toy_hub`` retrains the toy models (rules/toy.smk)."""
    return f"{results_dir('toy')}/hub"


def toy_cache_dir() -> str:
    """The toy-hub trainers' data cache."""
    return f"{results_dir('toy')}/cache"


def run_dir(results: str, name: str) -> str:
    return f"{results}/runs/{name}"


def student_dir(results: str, name: str) -> str:
    return f"{run_dir(results, name)}/{STUDENT}"


def reg_pairs_dir(results: str) -> str:
    return f"{results}/reg_pairs"


def warmup_dir(results: str, key: str) -> str:
    return f"{results}/warmups/{key}"


def lam_name(lam: float) -> str:
    """λ as it appears in folder and system names (``0.5``, ``1``)."""
    return f"{float(lam):g}"


def merge_sweep_dir(results: str, merge: str) -> str:
    """The folder of sweep ``merge``: one merged UNet per λ of its grid, written by one job."""
    return f"{results}/merges/{merge}"


def sweep_lambda_dir(sweep: str, lam: float) -> str:
    """The merged UNet at λ inside a sweep folder (``lambda-0.5``)."""
    return f"{sweep}/lambda-{lam_name(lam)}"


def merge_dir(results: str, merge: str, lam: float) -> str:
    """The merged UNet of sweep ``merge`` at λ (what a merged system samples)."""
    return sweep_lambda_dir(merge_sweep_dir(results, merge), lam)


def student_subfolder(scheme: str, ema: bool) -> str | None:
    """The subfolder of a student folder that holds the weights to sample: a full student's UNet
    (``unet_ema`` when it has EMA weights), a LoRA student's folder itself or its ``ema/`` adapter."""
    if scheme == "full":
        return UNET_EMA if ema else UNET
    return LORA_EMA if ema else None


def student_weights(student: str, scheme: str, ema: bool) -> str:
    """The folder of a student's weights (a UNet folder, or a LoRA folder with ``lora_config.json``)."""
    sub = student_subfolder(scheme, ema)
    return f"{student}/{sub}" if sub else student
