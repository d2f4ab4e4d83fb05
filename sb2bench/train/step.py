"""One training iteration: the student turn (VSD [+ CLIP, HPS, regulariser]) then the LoRA-teacher turn(s).

Every random draw comes from one CPU generator, in a fixed order, so a run resumed from a
checkpoint (which stores that generator) repeats the uninterrupted run bit for bit on CPU. Under
N processes each rank has its own generator (its part of the global batch) and gradients are
averaged over the ranks after each backward (distributed.py); with one process both are as before.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sb2bench.train import distributed, losses
from sb2bench.train.clip_guidance import decode01
from sb2bench.train.config import TrainConfig
from sb2bench.train.student import predict_x0


class NonFiniteError(FloatingPointError):
    """A NaN/inf loss or gradient: the run diverged (or a model produced garbage)."""


@dataclass
class Parts:
    """Everything a step touches. ``acp`` = the scheduler's alphas_cumprod on the device."""

    cfg: TrainConfig
    student: torch.nn.Module
    teacher: object  # SharedTeacher
    scheduler: object
    acp: torch.Tensor
    student_t: int
    opt_student: torch.optim.Optimizer
    opt_lora: torch.optim.Optimizer
    lr_student: object
    lr_lora: object
    accelerator: object
    gen: torch.Generator
    clip: object | None = None     # ClipScorer when clip_loss != "none"
    hps: object | None = None      # HpsScorer when hps_loss_weight > 0
    reg: object | None = None      # RegPairs (with .cond) when reg_weight > 0
    decoder: object | None = None  # D of the CLIP/HPS losses and of reg_loss "mse_pixel"
    ema: object | None = None
    student_params: list = field(default_factory=list)  # the trainable ones, listed once
    nonfinite_skips: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


def _randn(p: Parts, shape) -> torch.Tensor:
    return torch.randn(shape, generator=p.gen).to(p.device)


def _randint(p: Parts, lo: int, hi_inclusive: int, n: int) -> torch.Tensor:
    return torch.randint(lo, hi_inclusive + 1, (n,), generator=p.gen).to(p.device)


def _guard(p: Parts, step: int, what: str, value: torch.Tensor) -> bool:
    """True when finite (on every rank). Otherwise raise (policy "raise") or count a skip (policy "skip")."""
    if distributed.all_finite(value):
        return True
    hint = ("lower student_lr / lora_lr, check the teacher and init weights, or set nonfinite='skip' to "
            "skip such steps")
    if p.cfg.nonfinite == "raise":
        raise NonFiniteError(f"step {step}: non-finite {what} ({value.flatten()[:4].tolist()}); {hint}")
    p.nonfinite_skips += 1
    if p.nonfinite_skips > p.cfg.max_nonfinite_skips:
        raise NonFiniteError(f"step {step}: {p.nonfinite_skips} non-finite steps skipped (last: {what}), more "
                             f"than max_nonfinite_skips={p.cfg.max_nonfinite_skips}; {hint}")
    if distributed.is_main():
        print(f"[train] step {step}: non-finite {what}, update skipped ({p.nonfinite_skips} so far)", flush=True)
    return False


def _vsd_loss(p: Parts, x0: torch.Tensor, cond, null, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """VSD: the frozen-minus-LoRA teacher score difference at x_t, injected as a gradient on x0."""
    cfg = p.cfg
    x_t = p.scheduler.add_noise(x0.detach(), noise, t)
    uncond = null.expand_as(cond)
    with torch.no_grad():
        with p.teacher.frozen():
            eps_teacher = p.teacher.eps(x_t, t, cond, uncond, cfg.teacher_cfg)
        eps_lora = p.teacher.eps(x_t, t, cond, uncond, cfg.lora_cfg)
    grad = losses.vsd_grad(eps_teacher, eps_lora, losses.vsd_weight(p.acp, t, cfg.weighting))
    return losses.vsd_loss(x0, grad)


def _add_image_losses(p: Parts, step: int, x0: torch.Tensor, captions: list[str], loss: torch.Tensor,
                      logs: dict) -> torch.Tensor:
    """loss + the weighted CLIP and HPS terms, both from one decode of x0 (each only when on)."""
    cfg = p.cfg
    if p.clip is None and p.hps is None:
        return loss
    img = decode01(p.decoder, x0)
    if p.clip is not None:
        weight = losses.schedule_weight(step, cfg.max_steps, cfg.clip_weight, cfg.clip_schedule)
        cos = p.clip.cosines_of_images(img, captions)
        loss_clip = losses.clip_loss(cos, cfg.clip_loss, cfg.clip_tau)
        loss = loss + weight * loss_clip
        logs.update(loss_clip=loss_clip.item(), clip_weight=weight, clip_cos=cos.mean().item())
    if p.hps is not None:
        weight = losses.schedule_weight(step, cfg.max_steps, cfg.hps_loss_weight, cfg.hps_schedule)
        scores = p.hps.scores(img, captions)
        loss_hps = losses.hps_loss(scores)
        loss = loss + weight * loss_hps
        logs.update(loss_hps=loss_hps.item(), hps_weight=weight, hps=scores.mean().item())
    return loss


def _reg_loss(p: Parts) -> torch.Tensor:
    """DMD-style regression on a batch of stored pairs: student(noise, prompt) vs the teacher's output."""
    idx = torch.randint(0, len(p.reg), (p.cfg.reg_batch_size,), generator=p.gen)
    noise, target = (x.to(p.device) for x in p.reg.get(idx.tolist()))
    pred = predict_x0(p.student, p.acp, noise, p.reg.cond[idx].to(p.device), p.student_t)
    if p.cfg.reg_loss == "mse_pixel":
        with torch.no_grad():
            target = decode01(p.decoder, target)
        pred = decode01(p.decoder, pred)
    return losses.reg_loss(pred, target)


def _update_student(p: Parts, step: int, loss: torch.Tensor, x0: torch.Tensor, logs: dict) -> bool:
    """Backward, clip, step (and EMA) unless the loss or gradient is non-finite; True when stepped."""
    acc = p.accelerator
    p.opt_student.zero_grad(set_to_none=True)
    ok = _guard(p, step, "student x0", x0.detach()) and _guard(p, step, "student loss", loss.detach())
    if ok:
        acc.backward(loss)
        trainable = p.student_params
        distributed.average_gradients(trainable)
        norm = acc.clip_grad_norm_(trainable, p.cfg.max_grad_norm)
        ok = _guard(p, step, "student gradient norm", norm.detach())
        logs["grad_norm_student"] = norm.item()
    if ok:
        p.opt_student.step()
        if p.ema is not None:
            p.ema.update(p.student)
    p.opt_student.zero_grad(set_to_none=True)
    p.lr_student.step()
    return ok


def student_turn(p: Parts, step: int, cond, null, captions: list[str]) -> tuple[torch.Tensor | None, dict]:
    """VSD (+ CLIP, HPS, regulariser) update of the student; returns the detached x0 for the LoRA turn
    (None if skipped). Draw order: z, t, noise, then the regulariser's pair indices (only when on)."""
    cfg, b, c = p.cfg, len(cond), p.student.config
    latent_shape = (b, c.in_channels, c.sample_size, c.sample_size)
    z = _randn(p, latent_shape)
    t = _randint(p, cfg.t_min, cfg.t_max, b)
    noise = _randn(p, latent_shape)
    with p.accelerator.autocast():
        x0 = predict_x0(p.student, p.acp, z, cond, p.student_t)
        loss_vsd = _vsd_loss(p, x0, cond, null, t, noise)
        loss, logs = loss_vsd, {"loss_vsd": loss_vsd.item()}
        loss = _add_image_losses(p, step, x0, captions, loss, logs)
        if p.reg is not None:
            loss_reg = _reg_loss(p)
            loss = loss + cfg.reg_weight * loss_reg
            logs["loss_reg"] = loss_reg.item()
    logs.update(x0_std=x0.detach().std().item(), x0_mean=x0.detach().mean().item())
    ok = _update_student(p, step, loss, x0, logs)
    return (x0.detach() if ok else None), logs


def fresh_student_batch(p: Parts, cond_all) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, cond): a new prompt batch and the current student's one-step samples of it, without gradient.
    Draw order: prompts, then the student noise."""
    idx = torch.randint(0, len(cond_all), (p.cfg.batch_size,), generator=p.gen)
    cond = cond_all[idx].to(p.device)
    c = p.student.config
    z = _randn(p, (len(cond), c.in_channels, c.sample_size, c.sample_size))
    with torch.no_grad(), p.accelerator.autocast():
        x0 = predict_x0(p.student, p.acp, z, cond, p.student_t)
    return x0.float(), cond


def lora_turn(p: Parts, step: int, x0: torch.Tensor, cond, null, cond_all) -> dict:
    """``lora_updates_per_step`` denoising updates of the LoRA teacher: the first on ``x0`` (the samples the
    student turn just used, SBv1's alternation), each further one on fresh student samples of a new prompt
    batch (fresh_student_batch), so the extra updates track the student's distribution rather than refit
    one batch."""
    cfg, acc = p.cfg, p.accelerator
    losses_, norms = [], []
    for k in range(cfg.lora_updates_per_step):
        if k > 0:
            x0, cond = fresh_student_batch(p, cond_all)
            if not _guard(p, step, "student x0 (LoRA turn)", x0):
                continue
        b = len(x0)
        t = _randint(p, 0, p.scheduler.config.num_train_timesteps - 1, b)
        noise = _randn(p, x0.shape)
        drop = (torch.rand(b, generator=p.gen) < cfg.lora_null_prompt_prob).to(p.device).view(-1, 1, 1)
        c = torch.where(drop, null.expand_as(cond), cond)
        with acc.autocast():
            x_t = p.scheduler.add_noise(x0, noise, t)
            eps = p.teacher.unet(x_t, t, c).sample
            abar = p.acp[t] if cfg.lora_loss_weighting == "alpha_bar" else None
            loss = losses.lora_denoise_loss(eps, noise, abar)
        p.opt_lora.zero_grad(set_to_none=True)
        if _guard(p, step, "LoRA-teacher loss", loss.detach()):
            acc.backward(loss)
            distributed.average_gradients(p.teacher.lora_parameters())
            norm = acc.clip_grad_norm_(p.teacher.lora_parameters(), cfg.max_grad_norm)
            if _guard(p, step, "LoRA-teacher gradient norm", norm.detach()):
                p.opt_lora.step()
            norms.append(norm.item())
        p.opt_lora.zero_grad(set_to_none=True)
        p.lr_lora.step()
        losses_.append(loss.item())
    if not losses_:
        return {}
    return {"loss_lora": sum(losses_) / len(losses_), "grad_norm_lora": sum(norms) / max(1, len(norms))}


def lora_warmup_step(p: Parts, i: int, cond_all, null: torch.Tensor) -> dict:
    """One LoRA-teacher turn on samples of the (unchanged) student: ``lora_warmup_steps`` of these run
    before the first student update. Draw order: prompts, student noise, then the LoRA turn's draws."""
    x0, cond = fresh_student_batch(p, cond_all)
    if not _guard(p, -(i + 1), "student x0 (LoRA warm-up)", x0):
        return {}
    return lora_turn(p, -(i + 1), x0, cond, null.to(p.device), cond_all)


def train_step(p: Parts, step: int, cond_all: torch.Tensor, null: torch.Tensor, captions_all: list[str]) -> dict:
    """Draw a batch of prompts, then the student turn, then the LoRA-teacher turn."""
    idx = torch.randint(0, len(cond_all), (p.cfg.batch_size,), generator=p.gen)
    cond, captions = cond_all[idx].to(p.device), [captions_all[i] for i in idx.tolist()]
    null = null.to(p.device)
    x0, logs = student_turn(p, step, cond, null, captions)
    if x0 is not None:
        logs.update(lora_turn(p, step, x0, cond, null, cond_all))
    logs.update(lr_student=p.lr_student.get_last_lr()[0], lr_lora=p.lr_lora.get_last_lr()[0],
                nonfinite_skips=p.nonfinite_skips)
    return logs
