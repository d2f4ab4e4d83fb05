"""The loss formulas, as pure functions on tensors so tests can check them by hand.

* VSD (SwiftBrush v1 code, SBv2 Eq. 4): the teacher-minus-LoRA score difference is a *gradient*,
  not a loss; it is injected through 0.5 * ||x0 - sg(x0 - grad)||^2 whose derivative w.r.t. x0 is
  exactly grad / numel (mean reduction).
* LoRA-teacher denoising loss: plain epsilon-MSE, optionally abar_t-weighted as in SBv1.
* CLIP loss (SBv2 Eq. 5): clamped max(0, tau - cos) stops pushing an image once it is aligned
  enough, which is what keeps FID from degrading; the unclamped variant is 1 - cos (the same
  gradient as -cos, but non-negative so it logs like a loss).
* HPSv2 loss (SBv2 Table 9): the negative mean HPS (x100 scale) over 100, a reward to maximise.
* Regulariser (SBv2 "Ours*", after DMD, Yin et al. CVPR 2024, Eq. 6): regression of the student's
  output from a stored noise onto the teacher's multi-step output from the same noise. DMD uses
  LPIPS on images; we use MSE (LPIPS is not a dependency), on latents or on decoded images.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def vsd_weight(alphas_cumprod: torch.Tensor, t: torch.Tensor, weighting: str) -> torch.Tensor:
    """w(t) per sample, shaped (B, 1, 1, 1)."""
    if weighting == "one_minus_alpha_bar":
        w = 1.0 - alphas_cumprod.to(t.device)[t]
    elif weighting == "constant":
        w = torch.ones(len(t), device=t.device)
    else:
        raise ValueError(f"unknown VSD weighting {weighting!r}")
    return w.float().view(-1, 1, 1, 1)


def vsd_grad(eps_teacher: torch.Tensor, eps_lora: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """w(t) (eps_teacher - eps_lora) with NaN/inf zeroed (SBv1 applies nan_to_num here)."""
    return torch.nan_to_num(w * (eps_teacher.float() - eps_lora.float()), nan=0.0, posinf=0.0, neginf=0.0)


def vsd_loss(x0: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """0.5 * mean((x0 - sg(x0 - grad))^2): its gradient w.r.t. x0 is grad / x0.numel()."""
    target = (x0 - grad).detach()
    return 0.5 * F.mse_loss(x0.float(), target.float(), reduction="mean")


def lora_denoise_loss(eps_pred: torch.Tensor, eps: torch.Tensor, abar_t: torch.Tensor | None) -> torch.Tensor:
    """Epsilon-MSE of the LoRA teacher; ``abar_t`` (B,) weights each sample (None = unweighted)."""
    err = (eps_pred.float() - eps.float()) ** 2
    if abar_t is not None:
        err = err * abar_t.float().view(-1, 1, 1, 1)
    return err.mean()


def clip_loss(cos: torch.Tensor, mode: str, tau: float) -> torch.Tensor:
    """Per-batch mean of the CLIP loss from image-text cosines (B,)."""
    if mode == "clamped":
        return F.relu(tau - cos).mean()
    if mode == "unclamped":
        return (1.0 - cos).mean()
    raise ValueError(f"clip loss mode must be 'clamped' or 'unclamped', got {mode!r}")


def schedule_weight(step: int, max_steps: int, start: float, schedule: str) -> float:
    """Loss weight at ``step`` (0-based): constant, or decayed from ``start`` to 0 at ``max_steps``."""
    if schedule == "constant":
        return float(start)
    progress = min(max(step / max(1, max_steps), 0.0), 1.0)
    if schedule == "linear":
        return float(start) * (1.0 - progress)
    if schedule == "cosine":
        return float(start) * 0.5 * (1.0 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule {schedule!r}; choose constant, linear or cosine")


def hps_loss(scores: torch.Tensor) -> torch.Tensor:
    """-mean(HPS) / 100 from per-image HPS scores (B,) on hpsv2's x100 scale, i.e. -mean cosine."""
    return -scores.float().mean() / 100.0


def reg_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the student's output against the teacher's (target carries no gradient)."""
    return F.mse_loss(pred.float(), target.detach().float(), reduction="mean")
