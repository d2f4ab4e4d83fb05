"""Attribute accuracy: the toy world's exact alignment check.

The attribute classifier reads every attribute back from each generated image; an image
is *jointly* correct when every attribute its prompt names is read back correctly.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench.data.prompts import read_prompts
from sb2bench._infra.provenance import record
from sb2bench.toyworld import world

ATTRIBUTES_JSON = "attributes.json"  # written beside a system's metrics.json by its evaluation job


def attributes_path(metrics_json: str | Path) -> Path:
    """The attribute-accuracy record of the images scored in ``metrics_json`` (same folder)."""
    return Path(metrics_json).with_name(ATTRIBUTES_JSON)


def load_images(folder: Path, indices: list[int]) -> torch.Tensor:
    missing = [i for i in indices if not (folder / f"{i:06d}.png").exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: {len(missing)} images missing, e.g. {missing[0]:06d}.png")
    arr = np.stack([np.asarray(Image.open(folder / f"{i:06d}.png").convert("RGB")) for i in indices])
    return torch.from_numpy(arr).permute(0, 3, 1, 2).float() / 255.0


def targets(prompts: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, mentioned) arrays from prompt rows that carry toy attributes."""
    labels, mentioned = [], []
    for p in prompts:
        if "attributes" not in p:
            raise ValueError(f"prompt {p['index']} has no 'attributes': attribute accuracy needs a toy prompt set")
        labels.append([world.ATTRIBUTES[k].index(p["attributes"][k]) for k in world.ATTRIBUTE_NAMES])
        mentioned.append([k in p["mentioned"] for k in world.ATTRIBUTE_NAMES])
    return np.array(labels), np.array(mentioned, dtype=bool)


@torch.no_grad()
def predict(classifier, images01: torch.Tensor, batch: int = 512) -> np.ndarray:
    preds = []
    for i in range(0, len(images01), batch):
        preds.append(torch.stack([lg.argmax(-1) for lg in classifier(images01[i:i + batch])], 1))
    return torch.cat(preds).numpy()


def score(preds: np.ndarray, labels: np.ndarray, mentioned: np.ndarray) -> dict:
    correct = preds == labels
    joint = np.where(mentioned, correct, True).all(1)
    per = {k: float(correct[mentioned[:, j], j].mean()) if mentioned[:, j].any() else None
           for j, k in enumerate(world.ATTRIBUTE_NAMES)}
    return {"joint_accuracy": float(joint.mean()), "per_attribute": per,
            "chance_joint_accuracy": world.chance_joint_accuracy(mentioned), "n": int(len(preds)),
            "joint_per_image": joint.astype(int).tolist()}  # for bootstrap intervals over images


def attribute_accuracy(images: Path, prompts_file: Path, classifier_spec: str) -> dict:
    """The joint and per-attribute accuracy of ``images`` on the prompts' attributes, with its provenance
    (``sb2bench evaluate --classifier`` for a system's samples, ``sb2bench attributes`` for the reference)."""
    t0 = time.time()
    prompts = read_prompts(prompts_file)
    labels, mentioned = targets(prompts)
    classifier = zoo.load_classifier(classifier_spec)
    preds = predict(classifier, load_images(Path(images), [p["index"] for p in prompts]))
    result = score(preds, labels, mentioned)
    return record(metric="attribute_accuracy", value=result["joint_accuracy"], **result,
                  images=str(images), prompts=str(prompts_file), classifier=zoo.describe(classifier_spec),
                  wall_seconds=round(time.time() - t0, 2))
