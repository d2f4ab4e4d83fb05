"""The adversarial phase of the toy turbo, in the spirit of SD-Turbo's ADD: a caption-conditioned discriminator
on decoded images judges the one-step student against real renders of the world (the data the teacher was
trained on), while the regression onto the teacher's samples anchors it. A squared loss alone averages what the
student cannot fit (blurred, off-manifold samples); the adversarial term is mode-seeking instead.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from sb2bench.sample.generate import LoadedSystem, encode_prompts, latent_shape, one_step_x0
from sb2bench.toyworld.data import cached_dataset, random_captions, to_tensor01
from sb2bench.toyworld.training import EMA, Log, optimizer_step


class Discriminator(nn.Module):
    """A spectrally normalised CNN over 32 px images with a projection onto the caption's pooled embedding."""

    def __init__(self, text_dim: int, width: int = 64):
        super().__init__()
        w = width
        layers, channels = [], [3, w, 2 * w, 4 * w, 4 * w]
        for k, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
            conv = nn.Conv2d(c_in, c_out, 3, 1, 1) if k == 0 else nn.Conv2d(c_in, c_out, 4, 2, 1)
            layers += [spectral_norm(conv), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4))  # 32 px in: already 4 x 4
        self.hidden = spectral_norm(nn.Linear(4 * w * 16, 4 * w))
        self.out = spectral_norm(nn.Linear(4 * w, 1))
        self.text = spectral_norm(nn.Linear(text_dim, 4 * w))

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.hidden(self.body(images).flatten(1)), 0.2)
        return self.out(h).squeeze(1) + (h * self.text(text)).sum(1)


@torch.no_grad()
def real_renders(system: LoadedSystem, cfg: dict, cache_dir: Path | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real images (round-tripped through the VAE, so that both sides carry its decoder's artefacts), with
    captions drawn for them, their token embeddings (the student's condition) and pooled ones (the critic's)."""
    data = cached_dataset(cfg["seed"], cfg["n_real"], cache_dir)
    images = to_tensor01(data["images"]) * 2 - 1
    vae = system.vae
    images = torch.cat([vae.decode(vae.encode(images[i:i + 512]).latent_dist.mean).sample
                        for i in range(0, len(images), 512)])
    captions = random_captions(data["labels"], np.random.default_rng(cfg["seed"]))
    cond = torch.cat([encode_prompts(system, captions[i:i + 512]) for i in range(0, len(captions), 512)])
    return images, cond, cond.mean(1)


def adversarial_phase(student: nn.Module, system: LoadedSystem, pairs: tuple[torch.Tensor, ...], cfg: dict,
                      gen: torch.Generator, cache_dir: Path | None = None) -> tuple[EMA, list[dict]]:
    """Fine-tune ``student`` for ``cfg['steps']``: hinge GAN on real renders plus ``regression_weight`` times
    the squared error on the teacher ``pairs`` (z, x0, cond). Returns the EMA of the student and the log."""
    images, cond, pooled = real_renders(system, cfg, cache_dir)
    critic = Discriminator(pooled.shape[1])
    opt_g = torch.optim.AdamW(student.parameters(), lr=cfg["lr"], betas=(0.0, 0.99), weight_decay=0.0)
    opt_d = torch.optim.AdamW(critic.parameters(), lr=cfg["disc_lr"], betas=(0.0, 0.99), weight_decay=0.0)
    ema, log = EMA(student, cfg["ema_decay"]), Log("turbo-adversarial", max(1, cfg["steps"] // 10))
    scale, z, x0, pair_cond = system.vae.config.scaling_factor, *pairs
    for step in range(cfg["steps"]):
        r = torch.randint(0, len(images), (cfg["batch_size"],), generator=gen)
        p = torch.randint(0, len(z), (cfg["batch_size"],), generator=gen)
        noise = torch.randn((cfg["batch_size"], *latent_shape(system)), generator=gen)
        fake = system.vae.decode(one_step_x0(student, system.scheduler, noise, cond[r]) / scale).sample
        critic_loss = F.relu(1 - critic(images[r], pooled[r])).mean() + \
            F.relu(1 + critic(fake.detach(), pooled[r])).mean()
        optimizer_step(opt_d, None, critic_loss)
        adversarial = -critic(fake, pooled[r]).mean()
        regression = F.mse_loss(one_step_x0(student, system.scheduler, z[p], pair_cond[p]), x0[p])
        optimizer_step(opt_g, None, cfg["regression_weight"] * regression + cfg["weight"] * adversarial, max_norm=1.0)
        ema.update(student)
        log(step, cfg["steps"], critic=critic_loss.item(), adversarial=adversarial.item(), regression=regression.item())
    return ema, log.history

