"""The image side of SBv2's CLIP loss: decode the student latent, embed it with open_clip, cosine
with the caption. Decoder and CLIP are frozen, but gradients flow through both to x0.

The PIL preprocessing of open_clip is replaced by its differentiable equivalent (bicubic resize
to the CLIP input size when needed, then the model's mean/std normalisation).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from sb2bench.models import zoo


def load_decoder(spec: str):
    """AutoencoderTiny (taesd) or AutoencoderKL, whichever the spec holds; frozen."""
    ref = zoo.resolve(spec)
    tiny = False
    if ref.kind == "local":
        cfg_file = ref.path / "config.json"
        tiny = cfg_file.exists() and '"AutoencoderTiny"' in cfg_file.read_text()
    else:
        tiny = "taesd" in ref.location.lower()
    dec = zoo.load_tiny_vae(spec) if tiny else zoo.load_vae(spec)
    return dec.eval().requires_grad_(False)


def decode01(decoder, x0: torch.Tensor) -> torch.Tensor:
    """D(x0) in [0, 1]; the decoder's own scaling factor (1 for taesd, 0.18215 for SD's VAE)."""
    img = decoder.decode(x0 / decoder.config.scaling_factor).sample
    return ((img.float() + 1) / 2).clamp(0, 1)


def _normalisation(preprocess) -> tuple[list[float], list[float]]:
    for tf in getattr(preprocess, "transforms", []):
        if type(tf).__name__ == "Normalize":
            return list(tf.mean), list(tf.std)
    raise ValueError("open_clip preprocess has no Normalize transform; cannot build the CLIP loss input")


class ClipScorer:
    def __init__(self, clip_spec: str, decoder, prefix: str = ""):
        self.clip = zoo.load_open_clip(clip_spec)
        self.decoder = decoder
        self.prefix = prefix
        mean, std = _normalisation(self.clip.preprocess)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)
        size = self.clip.model.visual.image_size
        self.size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)

    def to(self, device) -> "ClipScorer":
        self.clip.model.to(device)
        self.decoder.to(device)
        self.mean, self.std = self.mean.to(device), self.std.to(device)
        return self

    def images01(self, x0: torch.Tensor) -> torch.Tensor:
        return decode01(self.decoder, x0)

    @torch.no_grad()
    def text_features(self, captions: list[str], device) -> torch.Tensor:
        tok = self.clip.tokenizer([self.prefix + c for c in captions]).to(device)
        return F.normalize(self.clip.model.encode_text(tok).float(), dim=-1)

    def cosines(self, x0: torch.Tensor, captions: list[str]) -> torch.Tensor:
        return self.cosines_of_images(self.images01(x0), captions)

    def cosines_of_images(self, img: torch.Tensor, captions: list[str]) -> torch.Tensor:
        """Cosines from already decoded images in [0, 1] (one decode serves the CLIP and HPS losses)."""
        if tuple(img.shape[-2:]) != self.size:
            img = F.interpolate(img, size=self.size, mode="bicubic", align_corners=False, antialias=True)
        img = (img - self.mean) / self.std
        img_f = F.normalize(self.clip.model.encode_image(img).float(), dim=-1)
        return (img_f * self.text_features(captions, img.device)).sum(-1)
