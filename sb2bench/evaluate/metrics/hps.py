"""HPSv2 on open_clip: hpsv2's own preprocessing and scoring without the ``hpsv2`` package.

hpsv2 (its pins break our dependency set, see README) scores an image as the cosine between the
L2-normalised image and text features of its fine-tuned ViT-H-14 (no logit scale), reported x100.
Its validation transform is *not* open_clip's default: the tensor is resized so its longest side is
224 (bicubic, antialiased), zero-padded to 224 x 224 around the centre, then normalised with the
OpenAI mean and std. Checkpoints (HPS_v2_compressed.pt / HPS_v2.1_compressed.pt, ``{"state_dict": ...}``)
are read from a local path; in the toy world the toy CLIP stands in for the backbone.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HPS_VERSIONS = {"v2.0": "HPS_v2_compressed.pt", "v2.1": "HPS_v2.1_compressed.pt"}


def resize_longest_and_pad(images01: torch.Tensor, size: int = 224) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, 3, size, size): longest side to ``size``, centred zero padding."""
    h, w = images01.shape[-2:]
    scale = size / float(max(h, w))
    if scale == 1.0:
        return images01
    nh, nw = round(h * scale), round(w * scale)
    out = F.interpolate(images01, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
    ph, pw = size - nh, size - nw
    return F.pad(out, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), value=0.0)


def hps_preprocess(images01: torch.Tensor, size: int = 224) -> torch.Tensor:
    mean = torch.tensor(OPENAI_MEAN, dtype=images01.dtype, device=images01.device).view(1, 3, 1, 1)
    std = torch.tensor(OPENAI_STD, dtype=images01.dtype, device=images01.device).view(1, 3, 1, 1)
    return (resize_longest_and_pad(images01, size) - mean) / std


def load_hps_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Load an HPS checkpoint (``{"state_dict": ...}``, optional ``module.`` prefixes) strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HPS checkpoint {path} not found; download {sorted(HPS_VERSIONS.values())} from the "
                                f"hub repo xswu/HPSv2 on a machine with internet and give its local path")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt.get("state_dict", ckpt)
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)


def hps_scores(model, tokenizer, images01: torch.Tensor, prompts: list[str], size: int | None = None) -> torch.Tensor:
    """HPS of each (image, prompt) pair, x100 like hpsv2's reports. Differentiable (an HPS loss can
    use it); wrap in ``torch.no_grad()`` for scoring. ``size`` defaults to the model's input size."""
    if len(images01) != len(prompts):
        raise ValueError(f"{len(images01)} images but {len(prompts)} prompts")
    if size is None:
        image_size = getattr(model.visual, "image_size", 224)
        size = int(image_size[0] if isinstance(image_size, (tuple, list)) else image_size)
    img = F.normalize(model.encode_image(hps_preprocess(images01, size)), dim=-1)
    txt = F.normalize(model.encode_text(tokenizer(list(prompts)).to(images01.device)), dim=-1)
    return 100.0 * (img * txt).sum(-1)
