"""Frozen teacher and LoRA teacher in one UNet: the adapter off gives eps_phi, on gives eps_psi.

Sharing the base weights saves one full UNet of memory (2.6 GB in fp32 for SD 2.1); the base
is frozen, so the frozen teacher stays bit-identical whatever the LoRA learns.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

from sb2bench.models import zoo
from sb2bench.train import lora
from sb2bench.train.config import TrainConfig


class SharedTeacher:
    def __init__(self, cfg: TrainConfig):
        self.unet = zoo.load_unet(cfg.teacher)
        lora.add_lora(self.unet, lora.TEACHER_ADAPTER, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
        if cfg.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.unet.train()
        # listed once: walking the UNet's parameters twice per LoRA update cost ~3 % of a toy step
        self._lora_params = [p for p in self.unet.parameters() if p.requires_grad]

    def lora_parameters(self) -> list[torch.nn.Parameter]:
        return self._lora_params

    @contextmanager
    def frozen(self):
        """Adapter disabled for the block: the original teacher."""
        self.unet.disable_adapters()
        try:
            yield
        finally:
            self.unet.enable_adapters()  # also makes the adapter trainable again (peft toggles grads)

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
            cfg: float) -> torch.Tensor:
        """Epsilon with classifier-free guidance (one batched call; no uncond pass when cfg == 1)."""
        if cfg == 1.0 or uncond is None:
            return self.unet(x_t, t, cond).sample.float()
        out = self.unet(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond])).sample.float()
        eps_u, eps_c = out.chunk(2)
        return eps_u + cfg * (eps_c - eps_u)
