"""``sb2bench plan``: what a config will run before it runs, with its cost.

Every training run, sampling job and scoring job of the DAG, each with its FLOPs and the GPU-hours those
take at a stated peak rate and utilisation, the totals, the disk space of images and checkpoints, and the
global batch / processes / accumulation of every run (plan/batch.py). The FLOPs per image are sums of the
per-pass counts measured with torch's FlopCounterMode on SD 2.1-base-size models (reference/flops.md §2-3);
the utilisation is an assumption until a GPU measurement exists (reports/bench/vsd_step.json recorded on
CUDA with an ``mfu`` field is used when present). Costs of the toy world are not modelled (its models are
not SD 2.1-base), so a toy plan is printed with the same SD 2.1-base costs as an upper bound.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sb2bench.plan.merges import merge_systems
from sb2bench.plan.batch import BatchPlan, plan_batches
from sb2bench.plan.runs import resolve_run, run_system, uses_shared_reg_pairs
from sb2bench.train.config import TrainConfig

# Per-pass GFLOP at batch 1, 512 px (64x64 latents, 77 text tokens), measured: reference/flops.md §2.
GF = {
    "unet_fwd": 804.257, "unet_fwdbwd_full": 2408.741, "unet_lora_teacher_fwd": 813.413,
    "unet_lora_teacher_fwdbwd": 1726.479, "unet_lora_student_fwdbwd": 1928.451,
    "vae_dec": 2514.519, "vae_dec_fwdbwd_frozen": 5063.398, "taesd_dec": 141.350, "taesd_dec_fwdbwd_frozen": 282.700,
    "text_fwd": 45.127, "clip_b32_img_fwdbwd_frozen": 17.727, "clip_g14_img": 534.063, "clip_g14_text": 47.091,
    "clip_h14_img": 334.590, "clip_h14_text": 47.091, "inception": 11.426,
}
UNET_PARAMS = 865_910_724          # SD 2.1-base UNet (reference/flops.md §2)
LORA_R256_ATTN_PARAMS = 53_116_928  # LoRA r=256 on to_q, to_k, to_v, to_out.0 of that UNet (ibid.); linear in rank
PEAK_TFLOPS = {"a100": 312.0, "h200": 790.0}  # dense bf16 (reference/flops.md: spec / measured matmul peak)
DEFAULT_MFU = 0.3
HPDV2_PER_STYLE = 800  # hpsv2's benchmark: 800 prompts per style (evaluation.hps.n_per_style null = all)
IMAGE_BYTES = 512 * 512 * 3  # an upper bound per stored 512 px image (uncompressed RGB; PNG is smaller)
BENCH = Path(__file__).resolve().parents[2] / "reports" / "bench" / "vsd_step.json"


@dataclass
class Job:
    kind: str  # "train" | "sample" | "score" | "reg-pairs" | "reference"
    name: str
    pflop: float
    detail: str
    disk_gb: float = 0.0
    batch: BatchPlan | None = None
    gpu_hours: float = 0.0


@dataclass
class Plan:
    jobs: list[Job]
    gpu: str
    mfu: float
    mfu_source: str
    gpus_per_train_job: int
    assumptions: list[str] = field(default_factory=list)
    world: str = "real"

    @property
    def total_gpu_hours(self) -> float:
        return sum(j.gpu_hours for j in self.jobs)

    @property
    def total_disk_gb(self) -> float:
        return sum(j.disk_gb for j in self.jobs)


def vsd_gflop_per_image(cfg: TrainConfig) -> float:
    """GFLOP of one training image-step: the student turn, the frozen and LoRA teachers' CFG passes, the LoRA
    teacher's denoising updates, the CLIP/HPS losses' decode, and the regulariser's pairs (per image of the
    global batch: ``reg_batch_size`` pairs per micro-batch of ``batch_size``)."""
    student = GF["unet_fwdbwd_full"] if cfg.scheme == "full" else GF["unet_lora_student_fwdbwd"]
    total = student + 2 * GF["unet_fwd"] + 2 * GF["unet_lora_teacher_fwd"]
    total += cfg.lora_updates_per_step * GF["unet_lora_teacher_fwdbwd"]
    if cfg.clip_loss != "none" or cfg.hps_loss_weight > 0:
        tiny = bool(cfg.clip_decoder) and "taesd" in cfg.clip_decoder.lower()
        total += GF["taesd_dec_fwdbwd_frozen"] if tiny else GF["vae_dec_fwdbwd_frozen"]
    if cfg.clip_loss != "none":
        total += GF["clip_b32_img_fwdbwd_frozen"]
    if cfg.hps_loss_weight > 0:
        total += 2 * GF["clip_h14_img"]  # ASSUMED: fwd+bwd with input gradients ~2x forward (not measured)
    if cfg.reg_weight > 0:
        total += cfg.reg_batch_size / cfg.batch_size * GF["unet_fwdbwd_full"]
    return total


def lora_params(rank: int) -> int:
    return round(LORA_R256_ATTN_PARAMS * rank / 256)


def checkpoint_gb(cfg: TrainConfig) -> float:
    """Disk of a run's kept checkpoints and its exported student: fp32 trainable weights with AdamW's two moments
    (student and LoRA teacher), the EMA copy, ``checkpoint_total_limit`` checkpoints, then the export."""
    student = UNET_PARAMS if cfg.scheme == "full" else lora_params(cfg.student_lora_rank)
    teacher = lora_params(cfg.lora_rank)
    ema = student if cfg.ema_decay else 0
    one = 4 * (3 * student + 3 * teacher + ema)
    n_ckpt = max(1, cfg.max_steps // cfg.checkpoint_every)
    kept = n_ckpt if cfg.checkpoint_total_limit is None else min(n_ckpt, cfg.checkpoint_total_limit)
    export = 4 * (student + ema)
    return (kept * one + export) / 1e9


def measured_mfu() -> tuple[float, str] | None:
    """The utilisation of the real VSD step measured on a GPU (bench/vsd_step.py on CUDA), when recorded."""
    if not BENCH.is_file():
        return None
    data = json.loads(BENCH.read_text())
    if data.get("machine", {}).get("device") != "cuda":
        return None
    values = [r["mfu"] for r in data.get("rows", []) if isinstance(r, dict) and isinstance(r.get("mfu"), (int, float))
              and str(r.get("path", r.get("name", ""))).startswith("ours")]
    if not values:
        return None
    return max(values), f"measured: {BENCH.name} on {data['machine'].get('gpu', 'a GPU')}"


def _sampled_systems(config: dict, results: str) -> dict[str, dict]:
    systems = {s["name"]: s for s in config["teacher_sampling"]["systems"]}
    for run in config["training"]["runs"]:
        if run.get("evaluate", True):
            systems[run["name"]] = run_system(config, run, results)
    systems.update(merge_systems(config, results))
    return systems


def _steps_cfg(system: dict) -> tuple[int, float]:
    if system.get("kind") == "onestep":
        return 1, 1.0
    return int(system.get("steps", 1) or 1), float(system.get("cfg", 1.0) or 1.0)


def _hps_systems(config: dict) -> set[str] | None:
    """The systems HPS scores (rules/common.smk hps_systems): those named in evaluation.hps.systems and in tables
    with an HPS column; None = every system (when none is named)."""
    hps = config["evaluation"]["hps"]
    if not hps["enabled"]:
        return set()
    chosen = set(hps.get("systems") or []) | {r["system"] for t in config["tables"]
                                              if any(str(m).startswith("hps") for m in t.get("metrics", []))
                                              for r in t.get("rows", []) if r.get("system")}
    return chosen or None


def _sample_gflop(system: dict) -> float:
    """One image: text encoder, the UNet passes (x2 with CFG), the VAE decoder."""
    steps, cfg = _steps_cfg(system)
    passes = 2 if cfg > 1 else 1
    return passes * GF["text_fwd"] + steps * passes * GF["unet_fwd"] + GF["vae_dec"]


def make_plan(config: dict, gpus_per_train_job: int, gpu: str = "a100", mfu: float | None = None) -> Plan:
    results = f"results/{config['world']}"
    if mfu is None:
        found = measured_mfu()
        mfu, source = found if found else (DEFAULT_MFU, "ASSUMED (no GPU measurement in reports/bench/ yet: run "
                                           "bench/gpu_check.sh; --mfu to change)")
    else:
        source = "given (--mfu)"
    batches = plan_batches(config, results, gpus_per_train_job)
    jobs: list[Job] = []
    for run in config["training"]["runs"]:
        cfg = TrainConfig.from_dict(resolve_run(config, run, results))
        b = batches[run["name"]]
        gf = vsd_gflop_per_image(cfg)
        images = cfg.max_steps * b.global_batch_size
        jobs.append(Job("train", run["name"], images * gf / 1e6,
                        f"{cfg.max_steps} steps x {b.global_batch_size} = {images:,} image-steps x {gf / 1e3:.2f} TFLOP "
                        f"({cfg.scheme}{', CLIP loss' if cfg.clip_loss != 'none' else ''}"
                        f"{', HPS loss' if cfg.hps_loss_weight else ''}{', regulariser' if cfg.reg_weight else ''})",
                        checkpoint_gb(cfg), b))
    if any(uses_shared_reg_pairs(config, r) for r in config["training"]["runs"]):
        rp = config["training"]["reg_pairs"]
        gf = 2 * GF["text_fwd"] + rp["steps"] * 2 * GF["unet_fwd"]
        jobs.append(Job("reg-pairs", "reg_pairs", rp["n"] * gf / 1e6,
                        f"{rp['n']:,} pairs x {rp['steps']}-step teacher with CFG ({gf / 1e3:.2f} TFLOP each)",
                        rp["n"] * 2 * 4 * 64 * 64 * 4 / 1e9))
    coco = config["teacher_sampling"]["prompts"] == "coco"
    n_coco = config["evaluation"]["coco"]["n_prompts"] if coco else 0
    hps = config["evaluation"]["hps"]
    n_hps = 4 * (hps["n_per_style"] or HPDV2_PER_STYLE) if hps["enabled"] else 0
    hps_systems = _hps_systems(config)
    for name, system in _sampled_systems(config, results).items():
        n_h = n_hps if (hps_systems is None or name in hps_systems) else 0
        n = n_coco + n_h
        if n == 0:
            continue
        gf = _sample_gflop(system)
        jobs.append(Job("sample", name, n * gf / 1e6,
                        f"{n:,} images ({n_coco:,} COCO + {n_h:,} HPS) x {gf / 1e3:.2f} TFLOP "
                        f"({_steps_cfg(system)[0]} step(s), cfg {_steps_cfg(system)[1]:g})", n * IMAGE_BYTES / 1e9))
        score = n_coco * (GF["inception"] + GF["clip_g14_img"] + GF["clip_g14_text"])
        score += n_h * (GF["clip_h14_img"] + GF["clip_h14_text"])
        jobs.append(Job("score", name, score / 1e6, f"FID Inception + CLIP ViT-g-14 on {n_coco:,}, HPS ViT-H-14 on "
                        f"{n_h:,}", n_coco * (256 * 256 * 3) / 1e9))  # + the 256 px protocol copies
    if coco:
        n_ref = config["evaluation"]["coco"].get("n_reference") or 40504
        jobs.append(Job("reference", "coco-reference", n_ref * GF["inception"] / 1e6,
                        f"{n_ref:,} reference images through Inception (once)", n_ref * 256 * 256 * 3 / 1e9))
    peak = PEAK_TFLOPS[gpu] * 1e12
    for j in jobs:
        j.gpu_hours = j.pflop * 1e15 / (peak * mfu) / 3600
    assumptions = [
        f"GPU-hours = FLOPs / ({gpu.upper()} peak {PEAK_TFLOPS[gpu]:.0f} TFLOP/s dense bf16 x utilisation {mfu:.0%}); "
        f"utilisation {source}. A GPU-hour is one GPU for one hour: a 4-GPU training job takes a quarter of its "
        f"GPU-hours in wall time",
        "FLOPs per image: sums of per-pass counts measured with torch FlopCounterMode on SD 2.1-base-size models "
        "(reference/flops.md): matmul, conv and attention only; text embeddings of training prompts are cached",
        "LoRA teacher passes use the measured r=64 to_q/to_v counts for every target set; the HPS loss backward is "
        "assumed to cost 2x its forward (not measured)",
        f"disk: images at most {IMAGE_BYTES / 1e6:.2f} MB each (uncompressed 512 px RGB; PNG is smaller) plus the "
        "256 px protocol copies of COCO images; checkpoints: fp32 trainable weights with AdamW moments, EMA, "
        "checkpoint_total_limit kept, and the exported student",
        "not counted: timing jobs (Table 8 protocol), merging (CPU-cheap), the toy world's own models "
        "(SD 2.1-base costs are shown for any config)",
    ]
    return Plan(jobs, gpu, mfu, source, gpus_per_train_job, assumptions, config["world"])


def to_markdown(plan: Plan, config_files: list[str]) -> str:
    lines = [f"# Plan: {' + '.join(config_files) or 'config/default.yaml'}", "",
             f"GPUs per training job: {plan.gpus_per_train_job} (processes {max(1, plan.gpus_per_train_job)}); "
             f"GPU model for the estimate: {plan.gpu.upper()}; utilisation {plan.mfu:.0%} ({plan.mfu_source})."
             + (" Toy world: the costs below are SD 2.1-base's, an upper bound far above the toy models'."
                if plan.world == "toy" else ""), "",
             "## Training runs", "",
             "| run | global batch | processes | batch/process | accumulation | PFLOP | GPU-hours | checkpoints GB |"
             " what |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for j in plan.jobs:
        if j.kind == "train":
            b = j.batch
            lines.append(f"| {j.name} | {b.global_batch_size} | {b.processes} | {b.batch_size} | {b.accumulation} | "
                         f"{j.pflop:,.0f} | {j.gpu_hours:,.1f} | {j.disk_gb:,.1f} | {j.detail} |")
    lines += ["", "## Sampling, scoring and data jobs", "", "| job | name | PFLOP | GPU-hours | disk GB | what |",
              "|---|---|---:|---:|---:|---|"]
    for j in plan.jobs:
        if j.kind != "train":
            lines.append(f"| {j.kind} | {j.name} | {j.pflop:,.1f} | {j.gpu_hours:,.2f} | {j.disk_gb:,.1f} | {j.detail} |")
    by_kind: dict[str, list[Job]] = {}
    for j in plan.jobs:
        by_kind.setdefault(j.kind, []).append(j)
    lines += ["", "## Totals", "", "| jobs | count | GPU-hours | GPU-days | disk GB |", "|---|---:|---:|---:|---:|"]
    for kind, js in by_kind.items():
        h = sum(j.gpu_hours for j in js)
        lines.append(f"| {kind} | {len(js)} | {h:,.1f} | {h / 24:,.2f} | {sum(j.disk_gb for j in js):,.1f} |")
    lines.append(f"| **all** | {len(plan.jobs)} | **{plan.total_gpu_hours:,.1f}** | **{plan.total_gpu_hours / 24:,.2f}** "
                 f"| **{plan.total_disk_gb:,.1f}** |")
    lines += ["", "## Assumptions", ""] + [f"- {a}" for a in plan.assumptions]
    return "\n".join(lines) + "\n"
