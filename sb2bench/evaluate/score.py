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
from sb2bench._infra.device import resolve_device
from sb2bench._infra.hashing import sha256_file, sha256_json, sha256_tree
from sb2bench.evaluate.metrics.attributes import attribute_accuracy, attributes_path
from sb2bench.evaluate.metrics.bootstrap import per_image_path, precision_recall_indicators
from sb2bench.evaluate.metrics.clip_score import folder_clip_score
from sb2bench.evaluate.metrics.features import load_feature_net
from sb2bench.evaluate.metrics.fid import fid_from_features, folder_features, kid_from_features
from sb2bench.data.prompts import read_prompts
from sb2bench.evaluate.protocol import protocol_block
from sb2bench._infra.provenance import record


def check_image_set(folder: Path, prompts: list[dict] | None, size: tuple[int, int] | None,
                    superset: bool = False) -> tuple[int, int]:
    """Exactly one readable image per prompt index (any PNGs when ``prompts`` is None, as for the COCO
    reference), all of one size; returns that size. ``superset``: further images may be present (the
    toy reference renders of a whole set, scored against a subset's prompts)."""
    folder = Path(folder)
    found = {p.name for p in folder.glob("*.png")} if folder.is_dir() else set()
    expected = {f"{p['index']:06d}.png" for p in prompts} if prompts is not None else found
    if not found:
        raise ValueError(f"{folder}: no PNG images; build or regenerate that folder first")
    if superset:
        found = found & expected if expected <= found else found
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


def prompt_rows(folder: Path, prompts: list[dict]) -> list[int]:
    """Rows of a folder's features (computed in file-name order) that hold the prompts' images, in prompt order."""
    position = {name: i for i, name in enumerate(sorted(p.name for p in folder.glob("*.png")))}
    return [position[f"{p['index']:06d}.png"] for p in prompts]


REF_FEATURES_MAX = 1 << 22  # reference features are copied into it up to this many numbers (KID claims)


def intervals(ref_f: np.ndarray, gen_f: np.ndarray, per_image: dict[str, np.ndarray], boot: dict,
              device: str) -> dict:
    """Bootstrap intervals over images of every metric (``boot``: n_boot, level, seed, method; n_boot 0 =
    off); ``per_image`` holds the precision / recall indicators and the other per-image values."""
    from sb2bench.evaluate.metrics.bootstrap import DEFAULT_METHOD, bootstrap_fid, bootstrap_kid, bootstrap_mean
    from sb2bench.evaluate.metrics.fid import feature_stats

    n_boot, level, seed = boot.get("n_boot", 0), boot.get("level", 0.95), boot.get("seed", 0)
    method = boot.get("method", DEFAULT_METHOD)
    if not n_boot:
        return {}
    mu, sigma = feature_stats(ref_f)
    out = {"fid": bootstrap_fid(gen_f, mu, sigma, n_boot, level, seed, device, method),
           "kid": bootstrap_kid(gen_f, ref_f, n_boot, level, seed, device, method=method)}
    out.update({name: bootstrap_mean(v, n_boot, level, seed, method) for name, v in per_image.items()})
    return {name: iv.as_dict() for name, iv in out.items()}


def write_per_image(path: Path, prompts: list[dict], ref_f: np.ndarray, gen_f: np.ndarray,
                    per_image: dict[str, np.ndarray], pairing: dict) -> None:
    """The arrays a paired claim needs, in prompt order: generated features, reference statistics, the
    per-image values (precision and recall indicators, CLIP, attributes) and what makes two systems
    pairable (``pairing``: prompts, noise seed, reference)."""
    from sb2bench.evaluate.metrics.fid import feature_stats

    order = [p["index"] for p in prompts]
    if order != sorted(order):  # features follow the sorted file names, CLIP and attributes the file's order
        raise ValueError("the prompt file does not list its prompts in index order; per-image values would not "
                         "line up with the features: rewrite it sorted by index")
    mu, sigma = feature_stats(ref_f)
    arrays = {"prompt_index": np.array(order, dtype=np.int64),
              "gen_features": gen_f, "ref_mu": mu, "ref_sigma": sigma,
              **{f"value_{k}": np.asarray(v, dtype=np.float64) for k, v in per_image.items()},
              "pairing": np.array(json.dumps(pairing, sort_keys=True))}
    if ref_f.size <= REF_FEATURES_MAX:
        arrays["ref_features"] = ref_f
    with atomic_file(path, "wb") as f:
        np.savez(f, **arrays)


def evaluate(images: Path, reference: Path, prompts_file: Path, protocol: str, models: dict,
             cache_dir: Path, out: Path, classifier: str | None = None, device: str = "cpu",
             bootstrap: dict | None = None, images_superset: bool = False) -> dict:
    """Score ``images`` (already protocol-resized in the real protocols) against ``reference``.

    ``classifier`` (toy world): the attribute classifier's spec; the same job then scores attribute accuracy
    of ``images`` and writes its full record to ``attributes.json`` beside ``out`` (what the teacher report
    reads), its joint accuracy into the metrics and its per-image values into ``per_image.npz``.
    ``images_superset``: ``images`` were sampled on a larger prefix-stable set (``evaluation.subset``'s
    whole-set systems) and only those of ``prompts`` are scored, so every system meets the same prompts."""
    t0 = time.time()
    device = resolve_device(device, "evaluation.device")
    block = protocol_block(protocol)
    prompts = read_prompts(prompts_file)
    size = (block["resize"]["size"],) * 2 if block["resize"] else None
    # toy: one reference render per prompt; COCO: every val2014 image, whatever the prompts
    per_prompt_ref = block["resize"] is None
    ref_size = check_image_set(Path(reference), prompts if per_prompt_ref else None, size, superset=True)
    check_image_set(Path(images), prompts, ref_size, superset=images_superset)
    # before the features: a prompt set without toy attributes is refused up front
    acc = attribute_accuracy(Path(images), Path(prompts_file), classifier) if classifier else None
    ref_sha, gen_sha = sha256_tree(reference), sha256_tree(images)
    described = {k: zoo.describe(v) for k, v in models.items() if v}  # hashes each network file once
    load_net = functools.cache(lambda: load_feature_net(models["feature_net"], device))
    ref_f = cached_features(Path(reference), ref_sha, described["feature_net"], load_net, cache_dir, device)
    if per_prompt_ref:  # one render per prompt: those of the scored prompts (all of them, or a subset's)
        ref_f = ref_f[prompt_rows(Path(reference), prompts)]
    gen_f = cached_features(Path(images), gen_sha, described["feature_net"], load_net, cache_dir, device)
    gen_f = gen_f[prompt_rows(Path(images), prompts)]  # the scored prompts' images, in prompt order
    indicators = precision_recall_indicators(ref_f, gen_f, k=block["precision_recall"]["k"], device=device)
    clip = folder_clip_score(zoo.load_open_clip(models["clip"], device), Path(images), prompts,
                             prefix=block["clip_score"]["prefix"], device=device)
    values = {"fid": fid_from_features(ref_f, gen_f), "kid": kid_from_features(ref_f, gen_f),
              "precision": float(indicators["precision"].mean()), "recall": float(indicators["recall"].mean()),
              "clip_score": clip["clip_score"]}
    per_image = {**indicators, "clip_score": np.asarray(clip["per_image"], dtype=np.float64)}
    if acc is not None:
        values["attribute_accuracy"] = acc["joint_accuracy"]
        per_image["attribute_accuracy"] = np.asarray(acc["joint_per_image"], dtype=np.float64)
    ci = intervals(ref_f, gen_f, per_image, bootstrap or {}, device)
    manifest = Path(images) / "manifest.json"
    system = json.loads(manifest.read_text()) if manifest.exists() else None
    pairing = {"prompts_sha256": sha256_file(prompts_file), "n": len(prompts), "reference_sha256": ref_sha,
               "noise_seed": ((system or {}).get("system") or {}).get("seed"), "protocol": block["name"]}
    write_per_image(per_image_path(out), prompts, ref_f, gen_f, per_image, pairing)
    if acc is not None:
        write_json(attributes_path(out), acc)
    result = record(metrics=values, intervals=ci, n=len(prompts), protocol=block,
                    system=system, pairing=pairing,
                    images={"path": str(images), "sha256": gen_sha},
                    reference={"path": str(reference), "sha256": ref_sha},
                    models=described,
                    device=device, wall_seconds=round(time.time() - t0, 2))
    write_json(out, result)
    return result
