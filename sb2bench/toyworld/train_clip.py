"""Train the toy CLIP: a small open_clip model, contrastive on rendered (image, caption) pairs.

It stands in for ViT-g-14 (CLIP score), ViT-B-32 (the clamped CLIP loss) and the HPSv2
ViT-H-14 backbone. Many captions repeat within a batch, so the contrastive targets treat
every pair with the same caption as a positive instead of penalising it as a negative.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from sb2bench.toyworld.data import cached_dataset, random_captions, to_tensor01
from sb2bench.toyworld.models import clip_model_config
from sb2bench.toyworld.training import optimizer_step, Log, seed_everything, warmup_cosine

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _normalize(x01: torch.Tensor) -> torch.Tensor:
    return (x01 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def train_clip(out: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    import open_clip

    gen = seed_everything(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    model_cfg = clip_model_config()
    model = open_clip.model.CLIP(**model_cfg).train()
    context = model_cfg["text_cfg"]["context_length"]
    data = cached_dataset(cfg["seed"], cfg["n_images"], cache_dir)
    images, labels = to_tensor01(data["images"]), data["labels"]
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], 50))
    log = Log("clip", max(1, cfg["steps"] // 10))
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(images), (cfg["batch_size"],), generator=gen)
        captions = random_captions(labels[idx.numpy()], rng, cfg["mention_prob"])
        img_f = F.normalize(model.encode_image(_normalize(images[idx])), dim=-1)
        txt_f = F.normalize(model.encode_text(open_clip.tokenize(captions, context_length=context)), dim=-1)
        logits = model.logit_scale.exp().clamp(max=100) * img_f @ txt_f.T
        same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)
        targets = same / same.sum(1, keepdim=True)
        loss = 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))
        optimizer_step(opt, sched, loss)
        log(step, cfg["steps"], loss=loss.item(), scale=model.logit_scale.exp().item())
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    preprocess = {"size": 32, "mean": list(MEAN), "std": list(STD), "interpolation": "bicubic",
                  "resize_mode": "shortest"}
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg,
                                                           "preprocess_cfg": preprocess}, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / "open_clip_model.safetensors")
    return {"train_seconds": log.elapsed, "history": log.history,
            "heldout_retrieval": _heldout_retrieval(model, context, cfg["seed"] + 1, cache_dir)}


@torch.no_grad()
def _heldout_retrieval(model, context: int, seed: int, cache_dir) -> float:
    """Share of held-out images whose own full caption beats 15 other captions."""
    import open_clip

    from sb2bench.toyworld import world

    scenes = world.make_scenes(seed, 256, mention_prob=1.0)
    batch = world.render_batch(scenes)
    img = F.normalize(model.encode_image(_normalize(to_tensor01(batch.images))), dim=-1)
    txt = F.normalize(model.encode_text(open_clip.tokenize(batch.captions, context_length=context)), dim=-1)
    sims = img @ txt.T
    wins = []
    for i in range(len(scenes)):
        others = [(i + k) % len(scenes) for k in range(1, 16)]
        wins.append(bool(sims[i, i] > sims[i, others].max()))
    return float(np.mean(wins))
