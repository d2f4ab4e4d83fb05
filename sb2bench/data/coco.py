"""COCO-2014 evaluation data: the 30K prompt list and the 256-px reference set, built from a local folder.

Expected layout of ``evaluation.coco.root`` (what the COCO zips unpack to)::

    <root>/val2014/COCO_val2014_000000000042.jpg ...
    <root>/annotations/captions_val2014.json

Prompt sources, in order of preference: SBv2's ``dataset.json`` (its first N entries, as the paper
did), a plain caption list (DMD2), or N captions drawn from ``captions_val2014.json`` -- N distinct
images in a seeded random order and one of each image's captions, drawn with the same seed.
"""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from sb2bench._infra.atomic import atomic_dir
from sb2bench.evaluate.protocol import protocol_resize

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class CocoDataError(ValueError):
    pass


def natural_key(name: str) -> list:
    """Sort key that orders ``img2`` before ``img10`` (the official code used natsort)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _load_json(path: Path, what: str):
    if not Path(path).is_file():
        raise CocoDataError(f"{what} {path} does not exist; set its path in evaluation.coco")
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise CocoDataError(f"{what} {path} is not valid JSON ({exc})") from exc


def _take(rows: list[dict], n: int, source: Path) -> list[dict]:
    if len(rows) < n:
        raise CocoDataError(f"{source} holds {len(rows)} captions but evaluation.coco.n_prompts asks for {n}")
    return [{"index": i, **row} for i, row in enumerate(rows[:n])]


def prompts_from_dataset_json(path: Path, n: int) -> list[dict]:
    """The first ``n`` entries of an SBv2 / EDM-style ``{"labels": [[path, caption], ...]}`` file."""
    data = _load_json(path, "SBv2 dataset.json")
    labels = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(labels, list) or not all(isinstance(x, list) and len(x) == 2 for x in labels):
        raise CocoDataError(f"{path}: expected {{\"labels\": [[path, caption], ...]}} (SBv2's dataset.json)")
    return _take([{"caption": str(c).strip(), "source": str(p)} for p, c in labels], n, path)


def prompts_from_caption_list(path: Path, n: int) -> list[dict]:
    """A caption list: one caption per line, or JSON Lines with a ``caption`` field."""
    path = Path(path)
    if not path.is_file():
        raise CocoDataError(f"caption list {path} does not exist; set evaluation.coco.caption_list")
    rows = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        caption = json.loads(line)["caption"] if line.lstrip().startswith("{") else line
        rows.append({"caption": caption.strip()})
    return _take(rows, n, path)


def prompts_from_captions(captions_json: Path, n: int, seed: int) -> list[dict]:
    """``n`` distinct val2014 images in a seeded random order, one seeded caption each."""
    data = _load_json(captions_json, "COCO captions file")
    if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
        raise CocoDataError(f"{captions_json}: not a COCO captions file (needs 'images' and 'annotations')")
    by_image: dict[int, list[str]] = {}
    for ann in sorted(data["annotations"], key=lambda a: a["id"]):
        by_image.setdefault(ann["image_id"], []).append(ann["caption"].strip())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    ids = sorted(by_image)
    if len(ids) < n:
        raise CocoDataError(f"{captions_json} captions {len(ids)} images; evaluation.coco.n_prompts asks for {n}")
    rng = np.random.default_rng(seed)
    chosen = [ids[i] for i in rng.permutation(len(ids))[:n]]
    picks = rng.integers(0, 1 << 30, size=n)
    return [{"index": i, "caption": by_image[iid][int(p) % len(by_image[iid])], "image_id": int(iid),
             "source": files.get(iid, "")} for i, (iid, p) in enumerate(zip(chosen, picks))]


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CocoDataError(f"image folder {folder} does not exist; evaluation.coco.root must hold val2014/")
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise CocoDataError(f"image folder {folder} holds no .jpg/.png images; unpack COCO's val2014.zip there")
    return files


def _resize_one(src: Path, dst: Path, size: int) -> None:
    try:
        with Image.open(src) as im:
            protocol_resize(im, size).save(dst)
    except OSError as exc:
        raise CocoDataError(f"{src}: unreadable image ({exc}); re-extract it") from exc


def resize_folder(sources: list[Path], out: Path, size: int, threads: int = 4,
                  names: list[str] | None = None) -> Path:
    """Protocol-resize every image into ``out`` (PNG), written whole or not at all."""
    names = names or [p.stem + ".png" for p in sources]
    if len(set(names)) != len(names):
        raise CocoDataError(f"image names collide after conversion to PNG in {out}")
    with atomic_dir(out) as tmp, ThreadPoolExecutor(max(1, threads)) as pool:
        list(pool.map(lambda sd: _resize_one(sd[0], tmp / sd[1], size), zip(sources, names)))
    return Path(out)


def build_reference(val_dir: Path, out: Path, size: int, expected: int | None, threads: int = 4) -> Path:
    """The reference set: every val2014 image, resized once. ``expected`` guards against partial folders."""
    files = list_images(val_dir)
    if expected is not None and len(files) != expected:
        raise CocoDataError(f"{val_dir} holds {len(files)} images, the protocol expects {expected} (all COCO-2014 "
                            f"val); finish extracting val2014.zip or set evaluation.coco.n_reference")
    return resize_folder(files, out, size, threads)
