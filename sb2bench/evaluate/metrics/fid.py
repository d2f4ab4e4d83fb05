"""FID (and KID) from features, and feature extraction through clean-fid.

Features are extracted with clean-fid's folder reader and resize ("clean" mode) by any callable
extractor -- clean-fid's Inception in the real world, the toy Inception (TorchScript, [0, 255] in)
in the toy world -- and the distances are computed here from the feature arrays, so the project
caches features itself (by content hash) instead of clean-fid's path-keyed cache.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or len(feats) < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def fid_from_features(feats1: np.ndarray, feats2: np.ndarray) -> float:
    from cleanfid.fid import frechet_distance

    mu1, s1 = feature_stats(feats1)
    mu2, s2 = feature_stats(feats2)
    return float(frechet_distance(mu1, s1, mu2, s2))


def kid_from_features(feats1: np.ndarray, feats2: np.ndarray, seed: int = 0) -> float:
    """clean-fid's KID; its subsets come from numpy's global RNG, seeded here (and restored) so the
    same features always give the same value."""
    from cleanfid.fid import kernel_distance

    state = np.random.get_state()
    np.random.seed(seed)
    try:
        return float(kernel_distance(np.asarray(feats1), np.asarray(feats2)))
    finally:
        np.random.set_state(state)


def folder_features(folder: str | Path, extractor, batch_size: int = 64, device: str = "cpu",
                    native_size: bool = False) -> np.ndarray:
    """Features of every image in ``folder`` (sorted names) via clean-fid's reader.

    ``native_size`` skips clean-fid's resize to 299 (the toy Inception resizes to 32 itself)."""
    from cleanfid.fid import get_folder_features

    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise FileNotFoundError(f"image folder {folder} is missing or empty")

    def model(batch: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return extractor(batch.to(device))

    resize = (lambda x: x.astype(np.float32)) if native_size else None
    return get_folder_features(str(folder), model=model, num_workers=0, batch_size=batch_size,
                               device=torch.device(device), mode="clean", custom_fn_resize=resize,
                               verbose=False)
