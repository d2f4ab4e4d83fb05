"""Train the toy VAE (AutoencoderKL) and the toy TinyVAE (AutoencoderTiny) that mimics it."""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from sb2bench.toyworld.data import cached_dataset, to_tensor01
from sb2bench.toyworld.models import build_tiny_vae, build_vae
from sb2bench.toyworld.training import optimizer_step, Log, seed_everything, warmup_cosine


def _batches(images: torch.Tensor, batch: int, steps: int, gen: torch.Generator):
    for step in range(steps):
        idx = torch.randint(0, len(images), (batch,), generator=gen)
        yield step, images[idx]


def train_vae(out: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    """Reconstruction + small KL; sets ``scaling_factor`` to 1/std of the latents like SD."""
    gen = seed_everything(cfg["seed"])
    data = cached_dataset(cfg["seed"], cfg["n_images"], cache_dir)
    images = to_tensor01(data["images"]) * 2 - 1
    vae = build_vae().train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], 20))
    log = Log("vae", max(1, cfg["steps"] // 10))
    for step, x in _batches(images, cfg["batch_size"], cfg["steps"], gen):
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample(generator=gen)).sample
        mse = F.mse_loss(rec, x)
        loss = mse + cfg["kl_weight"] * post.kl().mean() / x[0].numel()
        optimizer_step(opt, sched, loss)
        log(step, cfg["steps"], mse=mse.item())
    vae.eval()
    with torch.no_grad():
        held = to_tensor01(cached_dataset(cfg["seed"] + 1, 512, cache_dir)["images"]) * 2 - 1
        lat = vae.encode(held).latent_dist.mean
        rec_mse = F.mse_loss(vae.decode(lat).sample, held).item()
        scaling = float(1.0 / lat.std())
    vae.register_to_config(scaling_factor=scaling)
    vae.save_pretrained(out)
    return {"heldout_mse": rec_mse, "scaling_factor": scaling, "train_seconds": log.elapsed,
            "history": log.history}


def train_tiny_vae(out: Path, vae_dir: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    """Encoder regresses the VAE's scaled latents; decoder reconstructs from them (taesd recipe)."""
    from diffusers import AutoencoderKL

    gen = seed_everything(cfg["seed"])
    vae = AutoencoderKL.from_pretrained(vae_dir).eval().requires_grad_(False)
    scale = vae.config.scaling_factor
    images = to_tensor01(cached_dataset(cfg["seed"], cfg["n_images"], cache_dir)["images"]) * 2 - 1
    tiny = build_tiny_vae().train()
    opt = torch.optim.AdamW(tiny.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], 20))
    log = Log("tiny_vae", max(1, cfg["steps"] // 10))
    for step, x in _batches(images, cfg["batch_size"], cfg["steps"], gen):
        with torch.no_grad():
            z = vae.encode(x).latent_dist.mean * scale
        enc_loss = F.mse_loss(tiny.encode(x).latents, z)
        dec_loss = F.mse_loss(tiny.decode(z).sample, x)
        loss = enc_loss + dec_loss
        optimizer_step(opt, sched, loss)
        log(step, cfg["steps"], enc=enc_loss.item(), dec=dec_loss.item())
    tiny.eval()
    tiny.save_pretrained(out)
    return {"train_seconds": log.elapsed, "history": log.history}
