"""The evaluation protocols' image handling: centre-crop the long edge, then LANCZOS resize.

This is the GigaGAN / DMD2 / SwiftBrush-v2 COCO transform (BigGAN's CenterCropLongEdge followed
by PIL LANCZOS to 256), applied identically to generated and reference images.
"""
from __future__ import annotations

from PIL import Image


def center_crop_long_edge(img: Image.Image) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def protocol_resize(img: Image.Image, size: int = 256) -> Image.Image:
    return center_crop_long_edge(img.convert("RGB")).resize((size, size), Image.LANCZOS)


# Named, versioned protocol blocks; every metric file records the block it was computed under.
PROTOCOLS: dict[str, dict] = {
    "toy": {
        "name": "toy", "version": 1,
        "prompts": "toy evaluation set (results/toy/data/eval/prompts.jsonl), one reference render per prompt",
        "resize": None,
        "fid": {"features": "toy Inception (models.feature_net), clean-fid folder reader, native 32 px, RGB",
                "mode": "clean"},
        "precision_recall": {"k": 3, "features": "same as FID"},
        "clip_score": {"model": "models.clip", "prefix": "", "statistic": "mean raw cosine"},
    },
}


def protocol_block(name: str) -> dict:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    return PROTOCOLS[name]
