"""CLIP score: mean raw cosine between open_clip image and text embeddings (no x100, no clipping).

SwiftBrush v2 / DMD2 protocol: ViT-g-14 ``laion2b_s12b_b42k``, text ``"A photo depicts " + caption``,
on the 256-px protocol images. The toy world uses the toy CLIP and no prefix.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@torch.no_grad()
def clip_cosines(clip, images: list[Image.Image], captions: list[str], prefix: str = "",
                 batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Per-image cosine similarity between each image and its caption."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    out = []
    for i in range(0, len(images), batch_size):
        pix = torch.stack([clip.preprocess(im.convert("RGB")) for im in images[i:i + batch_size]]).to(device)
        tok = clip.tokenizer([prefix + c for c in captions[i:i + batch_size]]).to(device)
        img_f = F.normalize(clip.model.encode_image(pix).float(), dim=-1)
        txt_f = F.normalize(clip.model.encode_text(tok).float(), dim=-1)
        out.append((img_f * txt_f).sum(-1).cpu())
    return torch.cat(out).numpy()


def folder_clip_score(clip, folder: str | Path, prompts: list[dict], prefix: str = "", batch_size: int = 64,
                      **kw) -> dict:
    """Mean cosine of ``{index:06d}.png`` against its prompt; images are opened one batch at a time
    (30K open files would exceed the descriptor limit)."""
    folder = Path(folder)
    paths = [folder / f"{p['index']:06d}.png" for p in prompts]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"{folder}: {len(missing)} images missing, e.g. {missing[0].name}")
    cos = []
    for i in range(0, len(paths), batch_size):
        images = []
        for path in paths[i:i + batch_size]:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        cos.append(clip_cosines(clip, images, [p["caption"] for p in prompts[i:i + batch_size]], prefix,
                                batch_size=batch_size, **kw))
    cos = np.concatenate(cos)
    return {"clip_score": float(cos.mean()), "n": int(len(cos)), "prefix": prefix, "per_image": cos}
