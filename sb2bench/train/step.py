"""One training iteration: the student turn (VSD [+ CLIP, HPS, regulariser]) then the LoRA-teacher turn(s).

Every random draw comes from one CPU generator, in a fixed order, so a run resumed from a
checkpoint (which stores that generator) repeats the uninterrupted run bit for bit on CPU. Under
N processes x A accumulation steps, each of the N x A micro-batches of a global batch has its own
generator (trainer.build_parts seeds it by its place in the global batch), gradients are accumulated
over a process's micro-batches and averaged over the ranks (distributed.py): the same samples and the
same update whatever the layout (a step skipped for a non-finite value stops drawing at the failing
micro-batch, so after such a skip the layouts' streams part). With one process and one micro-batch all of
this is as before.
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
    teacher: object  # teacher.SplitTeacher or SharedTeacher (run key teacher_unet)
    scheduler: object
    acp: torch.Tensor
    student_t: int
    opt_student: torch.optim.Optimizer
    opt_lora: torch.optim.Optimizer
    lr_student: object
    lr_lora: object
    accelerator: object
    gen: torch.Generator           # the stream being drawn from: one of ``gens`` (or the only one)
    clip: object | None = None     # ClipScorer when clip_loss != "none"
    hps: object | None = None      # HpsScorer when hps_loss_weight > 0
    reg: object | None = None      # RegPairs (with .cond) when reg_weight > 0
    decoder: object | None = None  # D of the CLIP/HPS losses and of reg_loss "mse_pixel"
    ema: object | None = None
    student_params: list = field(default_factory=list)  # the trainable ones, listed once
    gens: list = field(default_factory=list)  # one stream per micro-batch of this process (gradient
    #                                          accumulation); [] = the single stream ``gen``
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
        eps_teacher, eps_lora = p.teacher.eps_pair(x_t, t, cond, uncond, cfg.teacher_cfg, cfg.lora_cfg)
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


def _update_student(p: Parts, step: int, logs: dict) -> bool:
    """Average the accumulated gradients over the ranks, clip, step (and EMA) unless the gradient is
    non-finite; True when stepped."""
    acc, trainable = p.accelerator, p.student_params
    distributed.average_gradients(trainable)
    norm = acc.clip_grad_norm_(trainable, p.cfg.max_grad_norm)
    ok = _guard(p, step, "student gradient norm", norm.detach())
    logs["grad_norm_student"] = norm.item()
    if ok:
        p.opt_student.step()
        if p.ema is not None:
            p.ema.update(p.student)
    return ok


def _backward(p: Parts, loss: torch.Tensor, scale: float) -> None:
    """Accumulate ``loss * scale``'s gradient (scale 1/micro-batches: the micro-batches' sum is the mean
    over the whole batch; with one micro-batch the loss is used as it is, bit for bit)."""
    p.accelerator.backward(loss if scale == 1 else loss * scale)


def student_turn(p: Parts, step: int, cond, null, captions: list[str],
                 scale: float = 1.0) -> tuple[torch.Tensor | None, dict]:
    """VSD (+ CLIP, HPS, regulariser) forward and backward of one micro-batch; returns the detached x0 for
    the LoRA turn (None if non-finite: the update is skipped). Draw order: z, t, noise, then the regulariser's
    pair indices (only when on)."""
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
    if not (_guard(p, step, "student x0", x0.detach()) and _guard(p, step, "student loss", loss.detach())):
        return None, logs
    _backward(p, loss, scale)
    return x0.detach(), logs


def fresh_student_batch(p: Parts, cond_all, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, cond): a new prompt batch and the current student's one-step samples of it, without gradient, drawn
    from the stream ``gen``. Draw order: prompts, then the student noise."""
    cond = cond_all[_draw_prompts(p, gen, len(cond_all))].to(p.device)
    c = p.student.config
    z = _randn(p, (len(cond), c.in_channels, c.sample_size, c.sample_size))
    with torch.no_grad(), p.accelerator.autocast():
        x0 = predict_x0(p.student, p.acp, z, cond, p.student_t)
    return x0.float(), cond


def lora_turn(p: Parts, step: int, micro: list[tuple[torch.Generator, torch.Tensor, torch.Tensor]],
              null, cond_all) -> dict:
    """``lora_updates_per_step`` denoising updates of the LoRA teacher: each update accumulates the gradient of
    every micro-batch ``(its generator, x0, cond)``, drawn from its stream. The first update uses the given x0
    (the samples the student turn just used, SBv1's alternation); each further one draws, per micro-batch, a new
    prompt batch and fresh student samples (fresh_student_batch), so the extra updates track the student's
    distribution rather than refit one batch."""
    cfg, acc = p.cfg, p.accelerator
    scale = 1.0 / len(micro)
    losses_, norms = [], []
    for k in range(cfg.lora_updates_per_step):
        if k > 0:
            micro = [(gen, *fresh_student_batch(p, cond_all, gen)) for gen, _, _ in micro]
            if not all(_guard(p, step, "student x0 (LoRA turn)", x0) for _, x0, _ in micro):
                continue
        p.opt_lora.zero_grad(set_to_none=True)
        ok, parts = True, []
        for gen, x0, cond in micro:
            p.gen, b = gen, len(x0)
            t = _randint(p, 0, p.scheduler.config.num_train_timesteps - 1, b)
            noise = _randn(p, x0.shape)
            drop = (torch.rand(b, generator=p.gen) < cfg.lora_null_prompt_prob).to(p.device).view(-1, 1, 1)
            c = torch.where(drop, null.expand_as(cond), cond)
            with acc.autocast():
                x_t = p.scheduler.add_noise(x0, noise, t)
                eps = p.teacher.unet(x_t, t, c).sample
                abar = p.acp[t] if cfg.lora_loss_weighting == "alpha_bar" else None
                loss = losses.lora_denoise_loss(eps, noise, abar)
            parts.append(loss.item())
            ok = _guard(p, step, "LoRA-teacher loss", loss.detach())
            if not ok:
                break
            _backward(p, loss, scale)
        if ok:
            distributed.average_gradients(p.teacher.lora_parameters())
            norm = acc.clip_grad_norm_(p.teacher.lora_parameters(), cfg.max_grad_norm)
            if _guard(p, step, "LoRA-teacher gradient norm", norm.detach()):
                p.opt_lora.step()
            norms.append(norm.item())
        p.opt_lora.zero_grad(set_to_none=True)
        p.lr_lora.step()
        losses_.append(sum(parts) / len(parts))
    p.gen = micro[0][0]
    if not losses_:
        return {}
    return {"loss_lora": sum(losses_) / len(losses_), "grad_norm_lora": sum(norms) / max(1, len(norms))}


def _streams(p: Parts) -> list[torch.Generator]:
    """This process's micro-batch streams, one per gradient-accumulation step ([gen] without accumulation)."""
    return p.gens or [p.gen]


def _draw_prompts(p: Parts, gen: torch.Generator, n_prompts: int) -> list[int]:
    p.gen = gen
    return torch.randint(0, n_prompts, (p.cfg.batch_size,), generator=gen).tolist()


def _mean(logs: list[dict]) -> dict:
    """The micro-batches' logs averaged (one micro-batch: its logs as they are)."""
    if len(logs) == 1:
        return logs[0]
    return {k: sum(d[k] for d in logs) / len(logs) for k in logs[0] if all(k in d for d in logs)}


def lora_warmup_step(p: Parts, i: int, cond_all: torch.Tensor, null: torch.Tensor) -> dict:
    """One LoRA-teacher turn on samples of the (unchanged) student: ``lora_warmup_steps`` of these run
    before the first student update. Draw order per micro-batch: prompts, student noise, then the LoRA turn's draws."""
    null, micro = null.to(p.device), []
    for gen in _streams(p):
        x0, cond = fresh_student_batch(p, cond_all, gen)
        if not _guard(p, -(i + 1), "student x0 (LoRA warm-up)", x0):
            p.gen = _streams(p)[0]
            return {}
        micro.append((gen, x0, cond))
    return lora_turn(p, -(i + 1), micro, null, cond_all)


def train_step(p: Parts, step: int, cond_all: torch.Tensor, null: torch.Tensor, captions_all: list[str]) -> dict:
    """One student update then the LoRA-teacher turn. The update accumulates the micro-batches of this
    process (``gens``: one stream each, see trainer.build_parts); with the ranks' gradients averaged it is the
    update of the whole global batch, the same whichever processes x accumulation layout draws it."""
    null, micro, logs_ = null.to(p.device), [], []
    scale = 1.0 / len(_streams(p))
    p.opt_student.zero_grad(set_to_none=True)
    for gen in _streams(p):
        idx = _draw_prompts(p, gen, len(cond_all))
        cond, captions = cond_all[idx].to(p.device), [captions_all[i] for i in idx]
        x0, logs = student_turn(p, step, cond, null, captions, scale)
        logs_.append(logs)
        if x0 is None:
            break
        micro.append((gen, x0, cond))
    logs = _mean(logs_)
    ok = len(micro) == len(_streams(p)) and _update_student(p, step, logs)
    p.opt_student.zero_grad(set_to_none=True)
    p.lr_student.step()
    if ok:
        logs.update(lora_turn(p, step, micro, null, cond_all))
    p.gen = _streams(p)[0]
    logs.update(lr_student=p.lr_student.get_last_lr()[0], lr_lora=p.lr_lora.get_last_lr()[0],
                nonfinite_skips=p.nonfinite_skips)
    return logs
