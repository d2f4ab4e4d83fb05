"""Improved precision and recall (Kynkäänniemi et al., 2019), k = 3 by default.

Each set's manifold is the union of balls around its features, radius = distance to the k-th
nearest other feature of the same set. Precision = share of generated features inside the real
manifold; recall = share of real features inside the generated manifold. Distances are computed
in batches with ``torch.cdist`` (on the GPU when given one), never as one N x N matrix.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x, device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float64 if device == "cpu" else torch.float32,
                           device=device)


def kth_neighbour_radii(feats: torch.Tensor, k: int, batch: int = 4096) -> torch.Tensor:
    """Distance from every feature to its k-th nearest neighbour in the same set (self excluded)."""
    if len(feats) <= k:
        raise ValueError(f"need more than k={k} features to define a manifold, got {len(feats)}")
    radii = []
    for i in range(0, len(feats), batch):
        d = torch.cdist(feats[i:i + batch], feats)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 1st smallest is the point itself
    return torch.cat(radii)


def coverage(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, batch: int = 4096) -> float:
    """Share of ``queries`` inside at least one ball (support_j, radii_j)."""
    inside = []
    for i in range(0, len(queries), batch):
        d = torch.cdist(queries[i:i + batch], support)
        inside.append((d <= radii[None, :]).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(real, fake, k: int = 3, device: str = "cpu", batch: int = 4096) -> dict:
    real_t, fake_t = _as_tensor(real, device), _as_tensor(fake, device)
    if real_t.ndim != 2 or fake_t.ndim != 2 or real_t.shape[1] != fake_t.shape[1]:
        raise ValueError(f"features must be (N, D) with equal D; got {tuple(real_t.shape)} and {tuple(fake_t.shape)}")
    real_r = kth_neighbour_radii(real_t, k, batch)
    fake_r = kth_neighbour_radii(fake_t, k, batch)
    return {"precision": coverage(fake_t, real_t, real_r, batch), "recall": coverage(real_t, fake_t, fake_r, batch),
            "k": k, "n_real": len(real_t), "n_fake": len(fake_t)}
