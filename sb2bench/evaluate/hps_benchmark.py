"""HPSv2 benchmark: the four style prompt sets and the per-style / averaged score of a system.

Real world: the HPDv2 benchmark prompt files (``anime.json``, ``concept-art.json``,
``paintings.json``, ``photo.json``, each a JSON list of strings, as hpsv2 ships them) from a local
folder, scored by open_clip ViT-H-14 with the HPS_v2 or HPS_v2.1 checkpoint from a local folder.
Toy world: prompts whose style is forced and named, scored by the toy CLIP standing in for HPS.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench._infra.atomic import write_json
from sb2bench._infra.hashing import sha256_tree
from sb2bench.evaluate.metrics.hps import HPS_VERSIONS, hps_scores, load_hps_checkpoint
from sb2bench.data.prompts import read_prompts, write_prompts
from sb2bench.evaluate.protocol import HPS_STYLES, protocol_block
from sb2bench._infra.provenance import record

TOY_STYLE = {"anime": "anime", "concept-art": "concept art", "paintings": "painting", "photo": "photo"}
HPS_STREAM = 3_000  # seed offset of the toy HPS prompt sets (train 1000, eval 2000)
# metric keys, named as in the paper's tables (hpsv2 calls the painting set "paintings")
HPS_METRIC = {"anime": "hps_anime", "concept-art": "hps_concept_art", "paintings": "hps_painting",
              "photo": "hps_photo"}


def toy_style_prompts(style: str, n: int, seed: int) -> list[dict]:
    from sb2bench.toyworld import world
    from sb2bench.toyworld.prompt_sets import prompt_rows

    stream = HPS_STREAM + 10 * seed + HPS_STYLES.index(style)
    scenes = world.make_scenes(stream, n, fixed={"style": TOY_STYLE[style]}, force_mention=("style",))
    return prompt_rows(scenes)


def benchmark_prompts(folder: Path, style: str, n: int | None) -> list[dict]:
    """The first ``n`` (all when None) prompts of hpsv2's benchmark file for ``style``."""
    path = Path(folder) / f"{style}.json"
    if not path.is_file():
        raise FileNotFoundError(f"HPS benchmark prompts {path} not found; evaluation.hps.benchmark must be a folder "
                                f"with {', '.join(s + '.json' for s in HPS_STYLES)} (hpsv2's benchmark/ folder)")
    prompts = json.loads(path.read_text())
    if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
        raise ValueError(f"{path}: expected a JSON list of prompt strings")
    prompts = prompts if n is None else prompts[:n]
    return [{"index": i, "caption": p} for i, p in enumerate(prompts)]


def write_style_prompts(out: Path, style: str, n: int | None, seed: int, benchmark: Path | None) -> None:
    if style not in HPS_STYLES:
        raise ValueError(f"unknown HPS style {style!r}; choose one of {HPS_STYLES}")
    rows = benchmark_prompts(benchmark, style, n) if benchmark else toy_style_prompts(style, n or 100, seed)
    write_prompts(out, rows)


def load_hps_model(spec: str, version: str, checkpoint_dir: str | None):
    """(model, tokenizer): an open_clip architecture name + HPS checkpoint, or a ready open_clip spec."""
    import open_clip

    if version not in HPS_VERSIONS:
        raise ValueError(f"evaluation.hps.version {version!r}: choose one of {sorted(HPS_VERSIONS)}")
    if spec in open_clip.list_models():
        if not checkpoint_dir:
            raise FileNotFoundError(f"models.hps is the bare architecture {spec!r}: set evaluation.hps.checkpoint to "
                                    f"the folder holding {HPS_VERSIONS[version]}")
        model = open_clip.create_model(spec, pretrained=None)
        load_hps_checkpoint(model, Path(checkpoint_dir) / HPS_VERSIONS[version])
        return model.eval().requires_grad_(False), open_clip.get_tokenizer(spec)
    clip = zoo.load_open_clip(spec)
    if checkpoint_dir:
        load_hps_checkpoint(clip.model, Path(checkpoint_dir) / HPS_VERSIONS[version])
    return clip.model, clip.tokenizer


@torch.no_grad()
def folder_hps(model, tokenizer, folder: Path, prompts: list[dict], batch_size: int = 32) -> np.ndarray:
    folder = Path(folder)
    scores = []
    for i in range(0, len(prompts), batch_size):
        rows = prompts[i:i + batch_size]
        paths = [folder / f"{r['index']:06d}.png" for r in rows]
        missing = [p.name for p in paths if not p.exists()]
        if missing:
            raise FileNotFoundError(f"{folder}: images missing for HPS, e.g. {missing[:3]}; regenerate the set")
        arrays = [np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 255.0 for p in paths]
        images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        scores.append(hps_scores(model, tokenizer, images, [r["caption"] for r in rows]).float())
    return torch.cat(scores).numpy()


def evaluate_hps(folders: dict[str, Path], prompt_files: dict[str, Path], protocol: str, version: str,
                 model_spec: str, checkpoint_dir: str | None, out: Path) -> dict:
    """Per-style mean HPS of a system and the plain average of the four styles, with provenance."""
    t0 = time.time()
    if set(folders) != set(HPS_STYLES) or set(prompt_files) != set(HPS_STYLES):
        raise ValueError(f"HPS needs one image folder and one prompt file per style {HPS_STYLES}")
    model, tokenizer = load_hps_model(model_spec, version, checkpoint_dir)
    per_style, n = {}, {}
    for style in HPS_STYLES:
        s = folder_hps(model, tokenizer, folders[style], read_prompts(prompt_files[style]))
        per_style[HPS_METRIC[style]] = float(s.mean())
        n[style] = int(len(s))
    metrics = {**per_style, "hps_average": float(np.mean(list(per_style.values())))}
    ckpt = Path(checkpoint_dir) / HPS_VERSIONS[version] if checkpoint_dir else None
    result = record(metrics=metrics, n=n, protocol=protocol_block(protocol, version if checkpoint_dir else None),
                    images={s: {"path": str(f), "sha256": sha256_tree(f)} for s, f in folders.items()},
                    model={"spec": model_spec, "checkpoint": str(ckpt) if ckpt else None,
                           "checkpoint_sha256": sha256_tree(ckpt) if ckpt else None},
                    wall_seconds=round(time.time() - t0, 2))
    write_json(out, result)
    return result
