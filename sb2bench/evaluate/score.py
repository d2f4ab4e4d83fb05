"""Score one system's images under a named protocol: FID, KID, precision/recall, CLIP score, and
(toy world) attribute accuracy, written as one JSON record with its provenance.

Features are cached under a key made of the image folder's content hash and the feature network's
hash, so regenerated images can never be scored against stale features. Nothing is written unless
every prompt has exactly one image of the reference's size.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.hashing import sha256_json, sha256_tree
from sb2bench.evaluate.metrics.clip_score import folder_clip_score
from sb2bench.evaluate.metrics.features import load_feature_net
from sb2bench.evaluate.metrics.fid import fid_from_features, folder_features, kid_from_features
from sb2bench.evaluate.metrics.precision_recall import precision_recall
from sb2bench.data.prompts import read_prompts
from sb2bench.evaluate.protocol import protocol_block
from sb2bench._infra.provenance import record


def check_image_set(folder: Path, prompts: list[dict] | None, size: tuple[int, int] | None) -> tuple[int, int]:
    """Exactly one readable image per prompt index (any PNGs when ``prompts`` is None, as for the COCO
    reference), all of one size; returns that size."""
    folder = Path(folder)
    found = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
    expected = {f"{p['index']:06d}.png" for p in prompts} if prompts is not None else found
    if not found:
        raise ValueError(f"{folder}: no PNG images; build or regenerate that folder first")
    if found != expected:
        missing, extra = sorted(expected - found), sorted(found - expected)
        raise ValueError(f"{folder}: {len(found)} images for {len(expected)} prompts "
                         f"(missing e.g. {missing[:3]}, unexpected e.g. {extra[:3]}); regenerate the set")
    sizes = set()
    for name in sorted(expected):
        try:
            with Image.open(folder / name) as im:
                im.verify()
            with Image.open(folder / name) as im:
                sizes.add(im.size)
        except Exception as exc:
            raise ValueError(f"{folder / name}: unreadable image ({exc}); regenerate it") from exc
    if len(sizes) != 1 or (size is not None and sizes != {size}):
        raise ValueError(f"{folder}: image sizes {sorted(sizes)} differ from the reference {size}")
    return sizes.pop()


def cached_features(folder: Path, folder_sha: str, extractor: dict, load_net, cache_dir: Path,
                    device: str = "cpu") -> np.ndarray:
    """Features of ``folder`` whose content hash is ``folder_sha``, cached by content, not by path.

    ``extractor``: the network's ``zoo.describe`` record (its hash is part of the key); ``load_net``
    builds the network, called only on a cache miss."""
    key = sha256_json({"images": folder_sha, "extractor": extractor})[:24]
    path = Path(cache_dir) / f"{key}.npy"
    if path.exists():
        return np.load(path)
    net = load_net()
    feats = folder_features(folder, net.extractor, native_size=net.native_size, device=device)
    with atomic_file(path, "wb") as f:
        np.save(f, feats)
    return feats


def intervals(ref_f: np.ndarray, gen_f: np.ndarray, per_image: dict[str, np.ndarray], k: int, boot: dict,
              device: str) -> dict:
    """Bootstrap intervals over images of every metric (``boot``: n_boot, level, seed; n_boot 0 = off)."""
    from sb2bench.evaluate.metrics.bootstrap import (bootstrap_fid, bootstrap_kid, bootstrap_mean,
                                            bootstrap_precision_recall)
    from sb2bench.evaluate.metrics.fid import feature_stats

    n_boot, level, seed = boot.get("n_boot", 0), boot.get("level", 0.95), boot.get("seed", 0)
    if not n_boot:
        return {}
    mu, sigma = feature_stats(ref_f)
    out = {"fid": bootstrap_fid(gen_f, mu, sigma, n_boot, level, seed, device),
           "kid": bootstrap_kid(gen_f, ref_f, n_boot, level, seed, device),
           **bootstrap_precision_recall(ref_f, gen_f, k, n_boot, level, seed, device)}
    out.update({name: bootstrap_mean(v, n_boot, level, seed) for name, v in per_image.items()})
    return {name: {kk: vv for kk, vv in iv.as_dict().items() if kk != "replicates"} for name, iv in out.items()}


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("evaluation.device is 'cuda' but torch sees no GPU; use 'auto' or 'cpu'")
    return device


def evaluate(images: Path, reference: Path, prompts_file: Path, protocol: str, models: dict,
             cache_dir: Path, out: Path, attributes: Path | None = None, device: str = "cpu",
             bootstrap: dict | None = None) -> dict:
    """Score ``images`` (already protocol-resized in the real protocols) against ``reference``.

    ``attributes``: the set's attribute-accuracy JSON (toy world), copied in rather than recomputed."""
    t0 = time.time()
    device = resolve_device(device)
    block = protocol_block(protocol)
    prompts = read_prompts(prompts_file)
    size = (block["resize"]["size"],) * 2 if block["resize"] else None
    # toy: one reference render per prompt; COCO: every val2014 image, whatever the prompts
    ref_size = check_image_set(Path(reference), prompts if block["resize"] is None else None, size)
    check_image_set(Path(images), prompts, ref_size)
    ref_sha, gen_sha = sha256_tree(reference), sha256_tree(images)
    described = {k: zoo.describe(v) for k, v in models.items() if v}  # hashes each network file once
    load_net = functools.cache(lambda: load_feature_net(models["feature_net"], device))
    ref_f = cached_features(Path(reference), ref_sha, described["feature_net"], load_net, cache_dir, device)
    gen_f = cached_features(Path(images), gen_sha, described["feature_net"], load_net, cache_dir, device)
    pr = precision_recall(ref_f, gen_f, k=block["precision_recall"]["k"], device=device)
    clip = folder_clip_score(zoo.load_open_clip(models["clip"], device), Path(images), prompts,
                             prefix=block["clip_score"]["prefix"], device=device)
    values = {"fid": fid_from_features(ref_f, gen_f), "kid": kid_from_features(ref_f, gen_f),
              "precision": pr["precision"], "recall": pr["recall"], "clip_score": clip["clip_score"]}
    per_image = {"clip_score": clip["per_image"]}
    if attributes is not None:
        acc = json.loads(Path(attributes).read_text())
        if Path(acc["images"]).resolve() != Path(images).resolve():
            raise ValueError(f"{attributes} scores {acc['images']}, not {images}")
        values["attribute_accuracy"] = acc["joint_accuracy"]
        if "joint_per_image" in acc:
            per_image["attribute_accuracy"] = np.asarray(acc["joint_per_image"], dtype=np.float64)
    ci = intervals(ref_f, gen_f, per_image, block["precision_recall"]["k"], bootstrap or {}, device)
    manifest = Path(images) / "manifest.json"
    result = record(metrics=values, intervals=ci, n=len(prompts), protocol=block,
                    system=json.loads(manifest.read_text()) if manifest.exists() else None,
                    images={"path": str(images), "sha256": gen_sha},
                    reference={"path": str(reference), "sha256": ref_sha},
                    models=described,
                    device=device, wall_seconds=round(time.time() - t0, 2))
    write_json(out, result)
    return result
