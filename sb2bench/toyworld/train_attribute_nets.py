"""Train the attribute classifier and the toy Inception (feature network for FID / P-R).

Both are BatchNorm convnets trained to read the scene attributes back from an image,
with blur and noise augmentation so that they stay reliable on generated images. They
differ in width, feature size and seed, so the metric network is not the judge of
alignment. The classifier is saved as config.json + model.safetensors; the feature
network as a TorchScript file with clean-fid's interface (images in [0, 255]).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from sb2bench.toyworld import world
from sb2bench.toyworld.data import cached_dataset, to_tensor01
from sb2bench.toyworld.models import AttributeNet, InceptionStandIn
from sb2bench.toyworld.training import optimizer_step, Log, seed_everything, warmup_cosine

CLASSIFIER_WIDTHS = (32, 64, 128, 128)
FEATURE_WIDTHS = (32, 64, 96, 128)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random blur (downsample-upsample) on 30 % of images and Gaussian noise on all."""
    blur = torch.rand(len(x), generator=gen) < 0.3
    if blur.any():
        small = F.interpolate(x[blur], scale_factor=0.5, mode="bilinear", antialias=True)
        x = x.clone()
        x[blur] = F.interpolate(small, size=x.shape[-2:], mode="bilinear")
    sigma = torch.rand(len(x), 1, 1, 1, generator=gen) * 0.08
    return (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def _train_net(widths, feature_dim: int, cfg: dict, cache_dir, name: str) -> tuple[AttributeNet, dict]:
    gen = seed_everything(cfg["seed"])
    data = cached_dataset(cfg["seed"], cfg["n_images"], cache_dir)
    images, labels = to_tensor01(data["images"]), torch.from_numpy(data["labels"])
    heads = [len(v) for v in world.ATTRIBUTES.values()]
    net = AttributeNet(heads, widths, feature_dim).train()
    opt = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, cfg["steps"], 20))
    log = Log(name, max(1, cfg["steps"] // 10))
    for step in range(cfg["steps"]):
        idx = torch.randint(0, len(images), (cfg["batch_size"],), generator=gen)
        logits = net(_augment(images[idx], gen))
        loss = sum(F.cross_entropy(lg, labels[idx, i]) for i, lg in enumerate(logits))
        optimizer_step(opt, sched, loss)
        log(step, cfg["steps"], loss=loss.item())
    net.eval()
    held = cached_dataset(cfg["seed"] + 1, 1000, cache_dir)
    acc = heldout_accuracy(net, to_tensor01(held["images"]), torch.from_numpy(held["labels"]))
    return net, {"heldout_accuracy": acc, "train_seconds": log.elapsed, "history": log.history}


@torch.no_grad()
def heldout_accuracy(net: AttributeNet, images01: torch.Tensor, labels: torch.Tensor) -> dict:
    preds = torch.stack([lg.argmax(-1) for lg in net(images01)], dim=1)
    per = (preds == labels).float().mean(0)
    out = {k: float(v) for k, v in zip(world.ATTRIBUTE_NAMES, per)}
    out["all"] = float((preds == labels).all(1).float().mean())
    return out


def train_classifier(out: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    net, metrics = _train_net(CLASSIFIER_WIDTHS, 128, cfg, cache_dir, "classifier")
    out.mkdir(parents=True, exist_ok=True)
    config = {"architecture": "AttributeNet", "widths": list(CLASSIFIER_WIDTHS), "feature_dim": 128,
              "attributes": {k: list(v) for k, v in world.ATTRIBUTES.items()}, "input": "RGB [0,1], 32 px"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    save_file(net.state_dict(), out / "model.safetensors")
    return metrics


def load_classifier(folder: Path) -> AttributeNet:
    config = json.loads((Path(folder) / "config.json").read_text())
    heads = [len(v) for v in config["attributes"].values()]
    net = AttributeNet(heads, tuple(config["widths"]), config["feature_dim"])
    net.load_state_dict(load_file(Path(folder) / "model.safetensors"))
    return net.eval()


def train_feature_net(out_file: Path, cfg: dict, cache_dir: Path | None = None) -> dict:
    net, metrics = _train_net(FEATURE_WIDTHS, 64, cfg, cache_dir, "feature_net")
    scripted = torch.jit.script(InceptionStandIn(net).eval())
    out_file.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(out_file))
    return metrics
