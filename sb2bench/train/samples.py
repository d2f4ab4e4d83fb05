"""Sample grids during training: the same prompts and the evaluation's noise at every K steps,
one row per step, so drift or collapse is visible at a glance."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sb2bench._infra.atomic import atomic_dir
from sb2bench.report.figures import image_grid
from sb2bench.sample.generate import initial_noise
from sb2bench.train.student import predict_x0


@torch.no_grad()
def decode_uint8(vae, latents: torch.Tensor) -> np.ndarray:
    images = vae.decode(latents / vae.config.scaling_factor).sample.float()
    images = ((images + 1) / 2).clamp(0, 1)
    return (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def write_samples(student, acp: torch.Tensor, t: int, vae, cond: torch.Tensor, indices: list[int], seed: int,
                  root: Path, step: int) -> Path:
    """Images of ``step`` in ``root/step-{step:06d}/`` and the grid of every step so far in ``root/grid.png``."""
    c = student.config
    z = initial_noise(indices, (c.in_channels, c.sample_size, c.sample_size), seed).to(cond.device)
    was_training = student.training
    student.eval()
    x0 = predict_x0(student, acp, z, cond, t)
    student.train(was_training)
    with atomic_dir(Path(root) / f"step-{step:06d}") as tmp:
        for i, img in zip(indices, decode_uint8(vae, x0)):
            Image.fromarray(img).save(tmp / f"{i:06d}.png")
    rows = [(p.name.replace("step-", "step "), p) for p in sorted(Path(root).glob("step-*")) if p.is_dir()]
    image_grid(rows, indices, Path(root) / "grid.png")
    return Path(root) / "grid.png"
