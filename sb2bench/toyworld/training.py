"""Small pieces shared by the toy-hub training loops."""
from __future__ import annotations

import copy
import math
import random
import time

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up then cosine decay to 10 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def optimizer_step(opt: torch.optim.Optimizer, lr_schedule, loss: torch.Tensor, max_norm: float | None = None) -> None:
    """Backward, optional gradient clipping, optimizer and (unless ``lr_schedule`` is None) LR-schedule step."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if max_norm is not None:
        params = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.step()
    if lr_schedule is not None:
        lr_schedule.step()


class EMA:
    """Exponential moving average of a module's parameters (with warm-up of the decay)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p.detach(), 1 - d)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)


class Log:
    """Print progress lines with elapsed time; keep the history for provenance."""

    def __init__(self, name: str, every: int):
        self.name, self.every, self.t0, self.history = name, every, time.time(), []

    def __call__(self, step: int, total: int, **values: float) -> None:
        if step % self.every and step != total - 1:
            return
        row = {"step": step, "elapsed_s": round(time.time() - self.t0, 1), **values}
        self.history.append(row)
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items())
        print(f"[{self.name}] {text}", flush=True)

    @property
    def elapsed(self) -> float:
        return time.time() - self.t0
