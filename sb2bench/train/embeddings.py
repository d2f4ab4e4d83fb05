"""Text embeddings of a prompt set, computed once and cached by content, or encoded per batch.

The key hashes the captions and the text encoder + tokenizer (content hash for local models, id
and revision for hub ids), so a changed prompt file or encoder can never reuse stale embeddings,
and two runs over the same prompts share one file whatever their folders are called. A prompt set
too large to hold (SBv2's 3.3M prompts would be about 1 TB of SD 2.1 embeddings) is encoded per batch
by ``BatchEncoder``, which gives the same tensors the cache would hold.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_file
from sb2bench._infra.hashing import sha256_json


@torch.no_grad()
def encode(text_encoder, tokenizer, captions: list[str], batch: int = 256) -> torch.Tensor:
    device = next(text_encoder.parameters()).device
    out = []
    for i in range(0, len(captions), batch):
        ids = tokenizer(captions[i:i + batch], padding="max_length", truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        out.append(text_encoder(ids.to(device))[0].float())
    return torch.cat(out)


class BatchEncoder:
    """Indexable like the cached (N, L, D) tensor, but encodes only the prompts asked for, on ``device``."""

    def __init__(self, pipeline_spec: str, captions: list[str], device: torch.device | str = "cpu"):
        self.text_encoder = zoo.load_text_encoder(pipeline_spec).eval().to(device)
        self.tokenizer = zoo.load_tokenizer(pipeline_spec)
        self.captions = captions

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, slice):
            chosen = self.captions[idx]
        else:
            chosen = [self.captions[i] for i in torch.as_tensor(idx).reshape(-1).tolist()]
        return encode(self.text_encoder, self.tokenizer, chosen)

    def null(self) -> torch.Tensor:
        return encode(self.text_encoder, self.tokenizer, [""])


def cache_key(pipeline_spec: str, captions: list[str]) -> str:
    return sha256_json({"captions": sha256_json(captions), "text_encoder": zoo.describe(pipeline_spec),
                        "format": 1})[:24]


def prompt_embeddings(pipeline_spec: str, captions: list[str], cache_dir: Path) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """(cond (N, L, D), null (1, L, D), cache file) for ``captions`` with the pipeline's text encoder."""
    path = Path(cache_dir) / f"text-{cache_key(pipeline_spec, captions)}.safetensors"
    if path.exists():
        d = load_file(str(path))
        if d["cond"].shape[0] == len(captions):
            return d["cond"], d["null"], path
    text_encoder = zoo.load_text_encoder(pipeline_spec).eval()
    tokenizer = zoo.load_tokenizer(pipeline_spec)
    cond = encode(text_encoder, tokenizer, captions).contiguous()
    null = encode(text_encoder, tokenizer, [""]).contiguous()
    with atomic_file(path, "wb") as f:
        f.write(save({"cond": cond, "null": null}))
    return cond, null, path
