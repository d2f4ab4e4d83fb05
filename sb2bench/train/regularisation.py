"""Image regularisation of SBv2's "Ours*" after DMD: a folder of (noise, teacher output, prompt) pairs.

SBv2 (§5.1) says only: 200K LAION-Aesthetic-6.25+ pairs (about 5 % of the data), "regularisation
[DMD]". DMD (Yin et al., "One-step Diffusion with Distribution Matching Distillation", CVPR 2024,
arXiv 2311.18828, §3.3) pre-computes noise-image pairs with the teacher's deterministic multi-step
sampler and adds lambda_reg * LPIPS(G(z), teacher(z)) with lambda_reg = 0.25 to the distribution-
matching loss, on a batch of its own. We read SBv2's pairs the same way: teacher ODE outputs for
LAION-Aesthetic captions (real LAION images would have no paired noise). That reading and the loss
are UNVERIFIED; LPIPS is not in our dependency set, so the loss is MSE (``reg_loss``).

Folder layout (``build_pairs``; the finished folder appears atomically, shards resume after a kill):
  pairs.json                 how the pairs were made, n, shard size, latent shape, sha256 per file, content_hash
  prompts.jsonl              {"index": i, "caption", "source_index"} of pair i
  shard-00000.safetensors    {"noise", "latents"}: float32 (k, C, H, W) for pairs [0, k), and so on
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_file, write_json
from sb2bench._infra.hashing import sha256_file, sha256_json
from sb2bench.data.prompts import read_prompts, write_prompts

FORMAT = 1
MANIFEST = "pairs.json"


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def _select(prompts: str | Path | list[dict], n: int | None) -> list[dict]:
    """The first ``n`` prompts (all when None): the caller picks the caption set, e.g. LAION-Aesthetic."""
    rows = read_prompts(prompts) if isinstance(prompts, (str, Path)) else list(prompts)
    if n is not None and not 1 <= n <= len(rows):
        raise ValueError(f"reg pairs: n={n} but the prompt set has {len(rows)} prompts; choose 1..{len(rows)}")
    return [{"index": i, "caption": r["caption"], "source_index": r["index"]} for i, r in enumerate(rows[:n])]


@torch.no_grad()
def _shard(system, rows: list[dict], batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """Teacher latents of ``rows`` and the noise they started from (noise of pair i: seed_for(seed, i))."""
    from sb2bench.sample.generate import initial_noise, latent_shape, sample_latents

    noise, latents = [], []
    for k in range(0, len(rows), batch_size):
        batch = rows[k:k + batch_size]
        idx = [r["index"] for r in batch]
        latents.append(sample_latents(system, [r["caption"] for r in batch], idx, idx[0]).float().cpu())
        noise.append(initial_noise(idx, latent_shape(system), seed))
    return {"noise": torch.cat(noise).contiguous(), "latents": torch.cat(latents).contiguous()}


def build_pairs(teacher_spec: str, prompts: str | Path | list[dict], n: int | None, out: str | Path,
                steps: int = 25, cfg: float = 4.5, seed: int = 0, batch_size: int = 16, shard_size: int = 1024,
                device: str = "auto", dtype: str = "float32") -> Path:
    """Sample the teacher (DDIM, ``steps``, CFG ``cfg``) from fixed noise for the first ``n`` prompts and
    write the pairs folder ``out``; an identical finished folder is returned as is."""
    from sb2bench.sample.generate import SystemSpec, latent_shape, load_system, resolve_runtime, runtime_record

    for name, value in (("steps", steps), ("batch_size", batch_size), ("shard_size", shard_size)):
        if value < 1:
            raise ValueError(f"reg pairs: {name} must be >= 1 (got {value})")
    out, rows = Path(out), _select(prompts, n)
    dev, dt = resolve_runtime(device, dtype)
    made = {"format": FORMAT, "teacher": zoo.describe(teacher_spec), "sampler": "ddim", "steps": steps, "cfg": cfg,
            "seed": seed, "n": len(rows), "batch_size": batch_size, "shard_size": shard_size, "device": dev,
            "dtype": dtype, "prompts": sha256_json(rows)}  # batching and runtime change the last bits
    if (out / MANIFEST).exists() and json.loads((out / MANIFEST).read_text())["made"] == made:
        return out
    work = out.parent / f".{out.name}.partial"
    if work.exists() and (not (work / "made.json").exists() or json.loads((work / "made.json").read_text()) != made):
        shutil.rmtree(work)  # an interrupted build of other pairs
    work.mkdir(parents=True, exist_ok=True)
    write_json(work / "made.json", made)
    system = load_system(SystemSpec(name="reg-pairs", pipeline=teacher_spec, steps=steps, cfg=cfg, scheduler="ddim",
                                    seed=seed), dev, dt)
    shards = []
    for k, start in enumerate(range(0, len(rows), shard_size)):
        shards.append(_shard_name(k))
        if not (work / shards[-1]).exists():
            with atomic_file(work / shards[-1], "wb") as f:
                f.write(save(_shard(system, rows[start:start + shard_size], batch_size, seed)))
    write_prompts(work / "prompts.jsonl", rows)
    files = {name: sha256_file(work / name) for name in [*shards, "prompts.jsonl"]}
    write_json(work / MANIFEST, {"made": made, "latent_shape": list(latent_shape(system)), "shards": shards,
                                 "runtime": runtime_record(system), "sha256": files,
                                 "content_hash": sha256_json(files)})
    (work / "made.json").unlink()
    if out.exists():
        shutil.rmtree(out)
    os.replace(work, out)
    return out


@dataclass
class RegPairs:
    """A pairs folder opened for training: captions in memory, latents read per batch (memory-mapped)."""

    folder: Path
    manifest: dict
    captions: list[str]
    cond: torch.Tensor | None = None  # text embeddings of the captions, set by the trainer
    _files: list = field(default_factory=list, repr=False)

    @classmethod
    def open(cls, folder: str | Path, verify: bool = False) -> RegPairs:
        folder = Path(folder)
        if not (folder / MANIFEST).is_file():
            raise FileNotFoundError(f"reg_pairs {folder} has no {MANIFEST}; build it with `sb2bench train-reg-pairs`")
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest["made"]["format"] != FORMAT:
            raise ValueError(f"reg_pairs {folder}: format {manifest['made']['format']}, expected {FORMAT}; rebuild it")
        if verify:
            bad = [n for n, h in manifest["sha256"].items() if sha256_file(folder / n) != h]
            if bad:
                raise ValueError(f"reg_pairs {folder}: {bad} differ from their recorded sha256; rebuild the folder")
        captions = [r["caption"] for r in read_prompts(folder / "prompts.jsonl")]
        return cls(folder, manifest, captions, _files=[safe_open(str(folder / s), framework="pt")
                                                       for s in manifest["shards"]])

    def __len__(self) -> int:
        return len(self.captions)

    @property
    def content_hash(self) -> str:
        return self.manifest["content_hash"]

    def get(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(noise, target latents) of the given pairs, float32 on the CPU."""
        size = self.manifest["made"]["shard_size"]
        noise, lat = [], []
        for i in indices:
            f, j = self._files[i // size], i % size
            noise.append(f.get_slice("noise")[j:j + 1])
            lat.append(f.get_slice("latents")[j:j + 1])
        return torch.cat(noise), torch.cat(lat)
