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
