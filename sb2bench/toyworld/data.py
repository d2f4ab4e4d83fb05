"""Rendered toy datasets as arrays, cached on disk under a content key.

The key hashes the renderer's source and the arguments, so editing the world can never
serve images rendered by an older version of it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sb2bench._infra.atomic import atomic_file
from sb2bench._infra.hashing import sha256_file, sha256_json
from sb2bench.toyworld import world


def world_fingerprint() -> str:
    return sha256_file(world.__file__)[:16]


def cached_dataset(seed: int, n: int, cache_dir: str | Path | None = None,
                   mention_prob: float = 0.5) -> dict[str, np.ndarray]:
    """Images (n,32,32,3) uint8, labels (n,A) int64 and mentioned (n,A) bool for items 0..n-1."""
    key = sha256_json({"world": world_fingerprint(), "seed": seed, "n": n, "p": mention_prob})[:20]
    path = Path(cache_dir) / f"toy-{key}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    b = world.make_dataset(seed, n, 0, mention_prob)
    arrays = {"images": b.images, "labels": b.labels, "mentioned": b.mentioned}
    if path is not None:
        with atomic_file(path, "wb") as f:
            np.savez(f, **arrays)
    return arrays


def to_tensor01(images_uint8: np.ndarray) -> torch.Tensor:
    """(n,H,W,3) uint8 -> (n,3,H,W) float in [0,1]."""
    return torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float().div_(255.0)


def random_captions(labels: np.ndarray, rng: np.random.Generator, mention_prob: float = 0.5) -> list[str]:
    """Fresh captions for known attributes, re-drawing which optional ones are named."""
    names = world.ATTRIBUTE_NAMES
    out = []
    for row in labels:
        attrs = {k: world.ATTRIBUTES[k][int(v)] for k, v in zip(names, row)}
        named = [k for k in names if k in world.ALWAYS_MENTIONED
                 or (k not in world.UNNAMED_BY_DEFAULT and rng.random() < mention_prob)]
        out.append(world.caption_for(attrs, named))
    return out
