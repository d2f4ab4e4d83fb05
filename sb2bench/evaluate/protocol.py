"""The evaluation protocols: named, versioned blocks that pin every choice, plus their image handling.

Every metric file records the block it was computed under, so a number always says how it was made.
The image transform (BigGAN's CenterCropLongEdge, then PIL LANCZOS to 256) is the GigaGAN / DMD2 /
SwiftBrush-v2 COCO transform, applied identically to generated and reference images.
"""
from __future__ import annotations

import copy

from PIL import Image

HPS_STYLES = ("anime", "concept-art", "paintings", "photo")  # hpsv2's benchmark prompt-set names

_RESIZE_256 = {"crop": "centre crop of the long edge (BigGAN CenterCropLongEdge)", "filter": "PIL LANCZOS",
               "size": 256, "applied_to": "generated and reference images, once, saved as PNG"}
_INCEPTION = ("clean-fid InceptionV3 TorchScript (inception-2015-12-05.pt), pool3 2048-d, RGB input "
              "read by PIL, clean-fid 'clean' resize to 299")
_HPS_REAL = {"backbone": "open_clip ViT-H-14 with the HPS_v2 / HPS_v2.1 checkpoint (evaluation.hps.version)",
             "preprocess": "hpsv2's: longest side to 224 (bicubic, antialiased), centred zero padding, "
                           "OpenAI mean/std",
             "prompts": "HPDv2 benchmark prompt sets anime, concept-art, paintings, photo",
             "statistic": "100 x cosine, mean per style, plain average of the four styles",
             "file_names": "{index:06d}.png (the official infer_hps.py wrote .png that hpsv2 read as .jpg: "
                           "every image 'missing')"}

PROTOCOLS: dict[str, dict] = {
    "toy": {
        "name": "toy", "version": 2,
        "prompts": "toy evaluation set (results/toy/data/eval/prompts.jsonl), one reference render per prompt",
        "reference": "the evaluation set's reference renders (one per prompt)",
        "resize": None,
        "fid": {"library": "clean-fid", "mode": "clean",
                "features": "toy Inception (models.feature_net) through clean-fid's custom-extractor path, "
                            "native 32 px, RGB"},
        "precision_recall": {"k": 3, "features": "same as FID"},
        "clip_score": {"model": "models.clip (toy CLIP)", "prefix": "", "statistic": "mean raw cosine"},
        "hps": {"backbone": "toy CLIP stand-in (models.hps), no HPS checkpoint",
                "preprocess": "hpsv2's (longest side to the model's input size, centred padding, OpenAI mean/std)",
                "prompts": "toy prompts with the style forced and named, one set per HPS style",
                "statistic": "100 x cosine, mean per style, plain average of the four styles"},
        "attributes": "joint attribute accuracy of the toy classifier (toy world only)",
    },
    "sbv2": {
        "name": "sbv2", "version": 1,
        "prompts": "the first 30,000 entries of SBv2's dataset.json ({'labels': [[path, caption], ...]}), or, "
                   "when none is given, 30,000 captions from COCO-2014 captions_val2014.json, one caption per "
                   "image, images and captions drawn with evaluation.coco.caption_seed",
        "reference": "all COCO-2014 val images (40,504)",
        "resize": _RESIZE_256,
        "fid": {"library": "clean-fid", "mode": "clean", "features": _INCEPTION},
        "precision_recall": {"k": 3, "features": _INCEPTION,
                             "differs_from_official": "the official eval/recall.py used the TF ADM Inception graph "
                                                      "on BGR input (cv2.imread); we use clean-fid's Inception on "
                                                      "RGB"},
        "clip_score": {"model": "open_clip ViT-g-14 laion2b_s12b_b42k", "prefix": "A photo depicts ",
                       "on": "the 256-px protocol images", "statistic": "mean raw cosine (no x100, no clipping)"},
        "hps": _HPS_REAL,
    },
    "dmd2": {
        "name": "dmd2", "version": 1,
        "prompts": "a 30K caption list (evaluation.coco.caption_list), first 30,000 lines",
        "reference": "the 40,504 COCO-2014 val images",
        "resize": _RESIZE_256,
        "fid": {"library": "clean-fid", "mode": "clean", "features": _INCEPTION},
        "precision_recall": {"k": 3, "features": _INCEPTION},
        "clip_score": {"model": "open_clip ViT-g-14 laion2b_s12b_b42k", "prefix": "",
                       "on": "the 256-px protocol images", "statistic": "mean raw cosine",
                       "note": "DMD2 names OpenCLIP ViT-g/14 but no text prefix"},
        "hps": _HPS_REAL,
    },
}
REAL_PROTOCOLS = ("sbv2", "dmd2")


def protocol_block(name: str, hps_version: str | None = None) -> dict:
    """A copy of the named block; ``hps_version`` (v2.0 / v2.1) is recorded when HPS is scored."""
    if name not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {name!r}; choose one of {sorted(PROTOCOLS)}")
    block = copy.deepcopy(PROTOCOLS[name])
    if hps_version is not None:
        block["hps"]["version"] = hps_version
    return block


def center_crop_long_edge(img: Image.Image) -> Image.Image:
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return img.crop((left, top, left + side, top + side))


def protocol_resize(img: Image.Image, size: int = 256) -> Image.Image:
    return center_crop_long_edge(img.convert("RGB")).resize((size, size), Image.LANCZOS)
