"""Train the toy "SD-Turbo": a one-step UNet regressed onto the teacher's ODE samples, then (optionally) an
adversarial phase against real renders (toyworld/adversarial.py).

Pairs (z, x0) come from the teacher's deterministic multi-step sampler (DDIM, CFG) started
at noise z; the student, initialised from the teacher, maps z at t = 999 to x0 through the
usual epsilon-to-x0 formula. Together they stand in for SD-Turbo's adversarial distillation (ADD): a
one-step model meant to be sharp and well aligned but less diverse than its teacher.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from sb2bench.sample.generate import SystemSpec, encode_prompts, initial_noise, latent_shape, load_system, \
    one_step_x0, sample_latents
from sb2bench.toyworld import world
from sb2bench.toyworld.adversarial import adversarial_phase
from sb2bench.toyworld.training import optimizer_step, EMA, Log, seed_everything, warmup_cosine


@torch.no_grad()
def teacher_pairs(teacher_dir: Path, cfg: dict) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(z, x0) pairs: x0 is the teacher's sample from ``cfg["noise_scale"]`` · z (1 when absent), so a scale below 1
    pairs each z with a lower-temperature (more typical, less diverse) sample (bench/turbo_signature.py)."""
    noise_scale = cfg.get("noise_scale", 1.0)
    spec = SystemSpec(name="teacher", pipeline=str(teacher_dir), steps=cfg["teacher_steps"],
                      cfg=cfg["teacher_cfg"], scheduler="ddim", seed=cfg["seed"])
    system = load_system(spec)
    captions = [s.caption for s in world.make_scenes(cfg["seed"], cfg["n_pairs"], mention_prob=0.5)]
    z, x0 = [], []
    b = cfg["pair_batch_size"]
    for k in range(0, len(captions), b):
        idx = list(range(k, min(k + b, len(captions))))
        z.append(initial_noise(idx, latent_shape(system), spec.seed))
        x0.append(sample_latents(system, [captions[i] for i in idx], idx, k // b, noise=z[-1] * noise_scale))
    return torch.cat(z), torch.cat(x0), captions


def train_turbo(out: Path, teacher_dir: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    gen = seed_everything(cfg["seed"])
    log = Log("turbo", max(1, cfg["steps"] // 10))
    z, x0, captions = teacher_pairs(teacher_dir, cfg)
    pair_seconds = log.elapsed
    system = load_system(SystemSpec(name="teacher", pipeline=str(teacher_dir), seed=cfg["seed"]))
    cond = torch.cat([encode_prompts(system, captions[i:i + 512]) for i in range(0, len(captions), 512)])
    student = system.unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(student.parameters(), lr=cfg["lr"], weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], 20))
    ema = EMA(student, cfg["ema_decay"])
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(z), (cfg["batch_size"],), generator=gen)
        pred = one_step_x0(student, system.scheduler, z[idx], cond[idx])
        loss = F.mse_loss(pred, x0[idx])
        optimizer_step(opt, sched, loss, max_norm=1.0)
        ema.update(student)
        log(step, cfg["steps"], loss=loss.item())
    result = {"pair_seconds": pair_seconds, "train_seconds": log.elapsed, "history": log.history}
    adversarial = cfg.get("adversarial") or {}
    if adversarial.get("steps", 0) > 0:
        # the phase starts from the regression's EMA weights, the model the regression alone would ship
        student = ema.module.train().requires_grad_(True)
        ema, result["adversarial_history"] = adversarial_phase(
            student, system, (z, x0, cond), {"seed": cfg["seed"], **adversarial}, gen, cache_dir)
        result["adversarial_seconds"] = log.elapsed - result["train_seconds"]
    ema.module.save_pretrained(Path(out) / "unet")
    return result
