"""The one-step student: a UNet read at t = 999 whose epsilon is turned into an image latent.

``sampling.one_step_x0`` builds its timestep tensor on the CPU, which breaks on CUDA; this version
puts it on the noise's device and is otherwise the same formula (a test checks equality on CPU).
"""
from __future__ import annotations

import torch

from sb2bench.models import zoo
from sb2bench.train import lora
from sb2bench.train.config import TrainConfig


def student_timestep(scheduler, cfg_timestep: int = -1) -> int:
    return scheduler.config.num_train_timesteps - 1 if cfg_timestep < 0 else cfg_timestep


def predict_x0(unet, alphas_cumprod: torch.Tensor, z: torch.Tensor, cond: torch.Tensor, t: int) -> torch.Tensor:
    """x0 = (z - sqrt(1 - abar_t) eps(z, t, y)) / sqrt(abar_t), abar from the scheduler."""
    abar = alphas_cumprod[t].to(device=z.device, dtype=torch.float32)
    tt = torch.full((len(z),), t, dtype=torch.long, device=z.device)
    eps = unet(z, tt, cond).sample.float()
    return (z.float() - (1 - abar).sqrt() * eps) / abar.sqrt()


def load_student(cfg: TrainConfig):
    """Student UNet from any zoo spec; full: every weight trains, lora: only a fresh adapter does."""
    unet = zoo.load_unet(cfg.student_init, cfg.student_init_subfolder or None)
    if cfg.scheme == "full":
        unet.requires_grad_(True)
    else:
        lora.add_lora(unet, lora.STUDENT_ADAPTER, cfg.student_lora_rank, cfg.student_lora_alpha,
                      cfg.student_lora_targets)
    if cfg.gradient_checkpointing:
        unet.enable_gradient_checkpointing()
    return unet.train()
