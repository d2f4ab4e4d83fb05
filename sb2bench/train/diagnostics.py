"""Drift diagnostics of a VSD run: is the student update distillation or a guidance push?

VSD moves the student along w(t)·(ε_teacher − ε_lora). When the LoRA teacher (the "fake score") tracks the
student's distribution, that difference points from the student's distribution to the teacher's. When it
does not, and the two teachers run at different CFG scales, the difference degenerates towards the pure
guidance term (teacher_cfg − 1)·(ε_c − ε_u), and the student drifts into over-guidance (toy calibration
notes, "Review of the shipped toy recipe"). So, per t bucket, on *fresh* student samples:

* ``mse_lora_<b>`` / ``mse_frozen_<b>``: conditional ε-MSE (unweighted) of the LoRA teacher and of the frozen
  teacher. A LoRA teacher that tracks the student denoises its samples better than the frozen teacher.
* ``cos_guidance_<b>``: the mean per-sample cosine between the VSD gradient (ε_teacher at teacher_cfg minus
  ε_lora at lora_cfg) and the guidance term. Near 1: the update is (mostly) a guidance push. Exactly 1 when
  the LoRA teacher equals the frozen one and lora_cfg = 1; 0 where either vector is zero.

Draws come from a generator of their own, seeded by (seed, step, rank): computing the diagnostics never
changes a run's random stream or weights, so ``diagnostics_every`` is a non-semantic key.
"""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import torch

from sb2bench.train import distributed
from sb2bench.train.student import predict_x0

if TYPE_CHECKING:
    from sb2bench.train.step import Parts

# t buckets [lo, hi) of SBv1's VSD range 20..980 (the last one includes 980); the VSD weight 1 - abar_t is
# largest in the upper two (SD's schedule: 0.02 at t 20, 0.58 at 400, 0.92 at 700, 0.99 at 980)
BUCKETS: dict[str, tuple[int, int]] = {"t20_400": (20, 400), "t400_700": (400, 700), "t700_980": (700, 981)}
QUANTITIES = ("mse_lora", "mse_frozen", "cos_guidance")
COLUMNS: tuple[str, ...] = tuple(f"{q}_{name}" for name in BUCKETS for q in QUANTITIES)


def per_sample_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Cosine of a[i] and b[i] flattened, (B,); 0 where either has zero norm."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    na, nb = a.norm(dim=1), b.norm(dim=1)
    cos = (a * b).sum(1) / (na * nb).clamp_min(eps)
    return torch.where((na > eps) & (nb > eps), cos, torch.zeros_like(cos)).float()


def bucket_stats(eps_c: torch.Tensor, eps_u: torch.Tensor, lora_c: torch.Tensor, lora_u: torch.Tensor,
                 noise: torch.Tensor, teacher_cfg: float, lora_cfg: float) -> dict[str, float]:
    """The three quantities of one bucket from the two teachers' conditional (c) and unconditional (u) ε."""
    teacher = eps_u + teacher_cfg * (eps_c - eps_u)
    fake = lora_c if lora_cfg == 1.0 else lora_u + lora_cfg * (lora_c - lora_u)
    guidance = (teacher_cfg - 1.0) * (eps_c - eps_u)
    return {"mse_lora": ((lora_c - noise) ** 2).mean().item(),
            "mse_frozen": ((eps_c - noise) ** 2).mean().item(),
            "cos_guidance": per_sample_cosine(teacher - fake, guidance).mean().item()}


def _generator(seed: int, step: int) -> torch.Generator:
    digest = hashlib.sha256(f"diagnostics:{seed}:{step}:{distributed.rank()}".encode()).hexdigest()
    return torch.Generator().manual_seed(int(digest[:15], 16))


def _eps_pair(unet, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor):
    """(ε_c, ε_u) in one batched call, as SharedTeacher.eps makes them."""
    out = unet(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond])).sample.float()
    eps_u, eps_c = out.chunk(2)
    return eps_c, eps_u


@torch.no_grad()
def drift(p: Parts, step: int, cond_all, null: torch.Tensor) -> dict[str, float]:
    """The COLUMNS at ``step``: per bucket, ``batch_size`` fresh prompts, student samples and noise levels."""
    cfg, gen, c = p.cfg, _generator(p.cfg.seed, step), p.student.config
    b, null = cfg.batch_size, null.to(p.device)
    out: dict[str, float] = {}
    for name, (lo, hi) in BUCKETS.items():
        idx = torch.randint(0, len(cond_all), (b,), generator=gen)
        cond = cond_all[idx].to(p.device)
        shape = (b, c.in_channels, c.sample_size, c.sample_size)
        z = torch.randn(shape, generator=gen).to(p.device)
        t = torch.randint(lo, hi, (b,), generator=gen).to(p.device)
        noise = torch.randn(shape, generator=gen).to(p.device)
        with p.accelerator.autocast():
            x0 = predict_x0(p.student, p.acp, z, cond, p.student_t)
            x_t = p.scheduler.add_noise(x0.float(), noise, t)
            uncond = null.expand_as(cond)
            with p.teacher.frozen() as frozen_unet:  # the shared UNet with its adapter off, or a separate copy
                eps_c, eps_u = _eps_pair(frozen_unet, x_t, t, cond, uncond)
            lora_c, lora_u = _eps_pair(p.teacher.unet, x_t, t, cond, uncond)
        stats = bucket_stats(eps_c, eps_u, lora_c, lora_u, noise, cfg.teacher_cfg, cfg.lora_cfg)
        out.update({f"{q}_{name}": v for q, v in stats.items()})
    return out
