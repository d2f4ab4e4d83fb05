"""The two teachers of VSD: the frozen teacher (eps_phi) and the LoRA teacher (eps_psi, trained).

Two layouts, chosen by the run key ``teacher_unet``; both compute the same numbers (tests/train/test_train_speed.py):

* ``split`` (default, :class:`SplitTeacher`): the frozen teacher is its own plain UNet, copied before the
  LoRA is injected, in eval mode and without gradients; the LoRA teacher is a second UNet carrying the
  adapter. The frozen passes skip peft's wrapped layers and the per-call adapter toggling (a walk over
  every module), and the frozen module can be compiled or cast on its own. Costs one UNet of memory
  (SD 2.1-base: 3.5 GB fp32).
* ``shared`` (:class:`SharedTeacher`): one UNet, the adapter switched off for the frozen passes, as in the
  SwiftBrush v1 code. Saves that UNet for small GPUs; the base is frozen, so the frozen teacher stays
  bit-identical whatever the LoRA learns.

``unet`` is the LoRA teacher in both (checkpoints, warm-ups and the export read its adapter).
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from sb2bench.models import zoo
from sb2bench.train import lora
from sb2bench.train.config import TEACHER_UNETS, TrainConfig



def cfg_eps(unet, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
            scale: float) -> torch.Tensor:
    """Epsilon with classifier-free guidance: both halves in one batched call; no uncond half when scale == 1."""
    if scale == 1.0 or uncond is None:
        return unet(x_t, t, cond).sample.float()
    out = unet(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([uncond, cond])).sample.float()
    eps_u, eps_c = out.chunk(2)
    return eps_u + scale * (eps_c - eps_u)


class _Teacher:
    """What the step needs: the LoRA teacher ``unet``, its trainable parameters and both guided epsilons."""

    def __init__(self, unet, cfg: TrainConfig):
        self.unet = unet
        lora.add_lora(self.unet, lora.TEACHER_ADAPTER, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
        if cfg.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        self.unet.train()
        # listed once: walking the UNet's parameters twice per LoRA update cost ~3 % of a toy step
        self._lora_params = [p for p in self.unet.parameters() if p.requires_grad]

    def lora_parameters(self) -> list[torch.nn.Parameter]:
        return self._lora_params

    def to(self, device) -> "_Teacher":
        self.unet.to(device)
        return self

    @contextmanager
    def frozen(self) -> Iterator[torch.nn.Module]:
        """The frozen teacher as a module, for the block."""
        raise NotImplementedError

    def eps_pair(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor | None,
                 teacher_cfg: float, lora_cfg: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(frozen-teacher eps at ``teacher_cfg``, LoRA-teacher eps at ``lora_cfg``), fp32; call under no_grad."""
        with self.frozen() as frozen:
            eps_teacher = cfg_eps(frozen, x_t, t, cond, uncond, teacher_cfg)
        return eps_teacher, cfg_eps(self.unet, x_t, t, cond, uncond, lora_cfg)


class SplitTeacher(_Teacher):
    """A plain frozen UNet (copied before the LoRA goes in) next to the LoRA-teacher UNet."""

    def __init__(self, unet, cfg: TrainConfig):
        self.frozen_unet = copy.deepcopy(unet).requires_grad_(False).eval()  # copying draws no random numbers
        super().__init__(unet, cfg)

    def to(self, device) -> "SplitTeacher":
        self.frozen_unet.to(device)
        return super().to(device)

    @contextmanager
    def frozen(self) -> Iterator[torch.nn.Module]:
        yield self.frozen_unet


class SharedTeacher(_Teacher):
    """One UNet: adapter off gives the frozen teacher, on gives the LoRA teacher (saves a UNet of memory)."""

    @contextmanager
    def frozen(self) -> Iterator[torch.nn.Module]:
        self.unet.disable_adapters()
        try:
            yield self.unet
        finally:
            self.unet.enable_adapters()  # also makes the adapter trainable again (peft toggles grads)


def build_teacher(cfg: TrainConfig, unet=None) -> _Teacher:
    """The teacher pair per ``cfg.teacher_unet``, from ``unet`` (default: the teacher's UNet from the zoo).
    The LoRA's random init is drawn here, after the copy, so both layouts draw the same numbers."""
    if unet is None:
        unet = zoo.load_unet(cfg.teacher)
    if cfg.teacher_unet not in TEACHER_UNETS:
        raise ValueError(f"train config key 'teacher_unet' is {cfg.teacher_unet!r}; choose one of {list(TEACHER_UNETS)}")
    return (SplitTeacher if cfg.teacher_unet == "split" else SharedTeacher)(unet, cfg)
