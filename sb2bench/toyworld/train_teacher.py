"""Train the toy teacher: an epsilon-prediction UNet on VAE latents with caption dropout.

The toy text encoder is trained jointly with the UNet and frozen afterwards (as GLIDE
does); a random frozen encoder gives too weak a conditioning signal to learn on a CPU in
minutes (see the calibration notes). Captions are re-drawn every step from the known
attributes so the model sees every mention pattern. Loss: epsilon MSE with min-SNR-5
weighting, which converges faster than plain MSE. EMA weights are what is shipped.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sb2bench.toyworld.data import cached_dataset, random_captions, to_tensor01
from sb2bench.toyworld.models import build_scheduler_config, build_text_encoder, build_unet
from sb2bench.toyworld.training import optimizer_step, EMA, Log, seed_everything, warmup_cosine


@torch.no_grad()
def encode_latents(vae, images01: torch.Tensor, batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image, already multiplied by the scaling factor."""
    means, stds = [], []
    for i in range(0, len(images01), batch):
        post = vae.encode(images01[i:i + batch] * 2 - 1).latent_dist
        means.append(post.mean)
        stds.append(post.std)
    s = vae.config.scaling_factor
    return torch.cat(means) * s, torch.cat(stds) * s


def min_snr_weights(alphas_cumprod: torch.Tensor, t: torch.Tensor, gamma: float) -> torch.Tensor:
    snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
    return torch.clamp(snr, max=gamma) / snr


def train_teacher(out: Path, vae_dir: Path, tokenizer_dir: Path, cfg: dict,
                  cache_dir: Path | None = None) -> dict:
    """Write ``out/unet`` and ``out/text_encoder`` (EMA weights)."""
    from diffusers import AutoencoderKL, DDPMScheduler

    from sb2bench.models.zoo import load_tokenizer

    gen = seed_everything(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    vae = AutoencoderKL.from_pretrained(vae_dir).eval().requires_grad_(False)
    tokenizer = load_tokenizer(str(tokenizer_dir))
    data = cached_dataset(cfg["seed"], cfg["n_images"], cache_dir)
    mean, std = encode_latents(vae, to_tensor01(data["images"]))
    labels = data["labels"]

    unet = build_unet(cfg["width"]).train()
    text_encoder = build_text_encoder(len(tokenizer), tokenizer.model_max_length).train()
    scheduler = DDPMScheduler.from_config(build_scheduler_config())
    acp = scheduler.alphas_cumprod
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], cfg["warmup"]))
    ema_unet, ema_text = EMA(unet, cfg["ema_decay"]), EMA(text_encoder, cfg["ema_decay"])
    log = Log("teacher", max(1, cfg["steps"] // 20))
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(labels), (cfg["batch_size"],), generator=gen)
        x0 = mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)
        captions = random_captions(labels[idx.numpy()], rng, cfg["mention_prob"])
        captions = [c if rng.random() >= cfg["caption_dropout"] else "" for c in captions]
        ids = tokenizer(captions, padding="max_length", truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        pred = unet(scheduler.add_noise(x0, noise, t), t, text_encoder(ids).last_hidden_state).sample
        per_item = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
        loss = (per_item * min_snr_weights(acp, t, cfg["min_snr_gamma"])).mean()
        optimizer_step(opt, lr, loss, max_norm=1.0)
        ema_unet.update(unet)
        ema_text.update(text_encoder)
        log(step, cfg["steps"], loss=loss.item())
        every = cfg.get("checkpoint_every", 0)
        if every and (step + 1) % every == 0 and step + 1 < cfg["steps"]:
            ema_unet.module.save_pretrained(Path(out) / f"checkpoint-{step + 1}" / "unet")
            ema_text.module.save_pretrained(Path(out) / f"checkpoint-{step + 1}" / "text_encoder")
    ema_unet.module.save_pretrained(Path(out) / "unet")
    ema_text.module.save_pretrained(Path(out) / "text_encoder")
    return {"train_seconds": log.elapsed, "history": log.history}
