"""Image generation for any system: multi-step with CFG, or one step at t = 999.

Reproducibility across sharding: prompt indices are cut into global batches of
``batch_size`` consecutive indices; a shard takes whole batches (batch b goes to shard
b mod n). The initial noise of index i comes from its own generator seeded with
(seed, i), and any scheduler noise from a generator seeded with (seed, batch). A batch is
therefore computed identically whichever shard or process runs it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_dir, write_json
from sb2bench._infra.device import resolve_runtime
from sb2bench._infra.progress import Progress
from sb2bench.sample.gather import write_manifest


@dataclass(frozen=True)
class SystemSpec:
    """What turns prompts into images. ``unet`` overrides the pipeline's UNet; "random"
    gives a randomly initialised UNet of the same architecture (a floor for metrics)."""

    name: str
    pipeline: str
    kind: str = "multistep"  # "multistep" | "onestep"
    unet: str | None = None
    steps: int = 25
    cfg: float = 4.5
    scheduler: str | None = "ddim"
    seed: int = 0
    unet_subfolder: str | None = "unet"
    label: str | None = None

    @classmethod
    def from_dict(cls, d: dict) -> "SystemSpec":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"system {d.get('name')!r}: unknown keys {sorted(unknown)}; allowed {sorted(known)}")
        if d.get("kind", "multistep") not in ("multistep", "onestep"):
            raise ValueError(f"system {d.get('name')!r}: kind must be 'multistep' or 'onestep'")
        return cls(**d)


@dataclass
class LoadedSystem:
    spec: SystemSpec
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: object
    provenance: dict = field(default_factory=dict)
    device: str = "cpu"
    dtype: torch.dtype = torch.float32


def _lora_folder(unet: str, subfolder: str | None) -> Path | None:
    """The folder holding ``lora_config.json`` when ``unet`` (+ subfolder) is a LoRA student."""
    from sb2bench.plan.paths import LORA_CONFIG

    try:
        ref = zoo.resolve(unet)
    except zoo.ModelNotFoundError:
        return None
    if ref.kind != "local":
        return None
    folder = ref.path / subfolder if subfolder else ref.path
    return folder if (folder / LORA_CONFIG).is_file() else None


def load_system(spec: SystemSpec, device: str = "cpu", dtype: torch.dtype = torch.float32) -> LoadedSystem:
    if spec.unet == "random":
        from diffusers import UNet2DConditionModel

        torch.manual_seed(spec.seed)
        unet = UNet2DConditionModel.from_config(zoo.load_unet_config(spec.pipeline, spec.unet_subfolder))
        unet_prov = {"spec": "random", "seed": spec.seed}
    elif spec.unet and _lora_folder(spec.unet, spec.unet_subfolder):
        from sb2bench.models.lora import load_fused_unet  # fused into the base its lora_config.json names

        folder = _lora_folder(spec.unet, spec.unet_subfolder)
        unet = load_fused_unet(str(folder))
        unet_prov = {**zoo.describe(str(folder)), "lora": True}
    else:
        unet = zoo.load_unet(spec.unet or spec.pipeline, spec.unet_subfolder)
        unet_prov = zoo.describe(spec.unet) if spec.unet else "pipeline"
    sched_name = spec.scheduler if spec.kind == "multistep" else "ddpm"
    system = LoadedSystem(
        spec=spec, unet=unet.eval(), vae=zoo.load_vae(spec.pipeline).eval(),
        text_encoder=zoo.load_text_encoder(spec.pipeline).eval(),
        tokenizer=zoo.load_tokenizer(spec.pipeline), scheduler=zoo.load_scheduler(spec.pipeline, sched_name),
        provenance={"pipeline": zoo.describe(spec.pipeline), "unet": unet_prov}, device=device, dtype=dtype)
    for module in (system.unet, system.vae, system.text_encoder):
        module.to(device=device, dtype=dtype)
    return system


NOISE_STREAM, SCHEDULER_STREAM = 0, 1


def seed_for(seed: int, index: int, stream: int = NOISE_STREAM) -> int:
    """A 63-bit seed derived from (seed, stream, index) only."""
    state = np.random.SeedSequence([int(seed), stream, int(index)]).generate_state(1, np.uint64)[0]
    return int(state >> 1)


def initial_noise(indices: list[int], shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(seed_for(seed, i)))
                        for i in indices])


@torch.no_grad()
def encode_prompts(system: LoadedSystem, captions: list[str]) -> torch.Tensor:
    tok = system.tokenizer
    ids = tok(captions, padding="max_length", truncation=True, max_length=tok.model_max_length,
              return_tensors="pt").input_ids
    return system.text_encoder(ids.to(system.device))[0]


@torch.no_grad()
def decode(system: LoadedSystem, latents: torch.Tensor) -> np.ndarray:
    images = system.vae.decode(latents.to(system.dtype) / system.vae.config.scaling_factor).sample
    images = ((images.float().cpu() + 1) / 2).clamp(0, 1)
    return (images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)


def latent_shape(system: LoadedSystem) -> tuple[int, int, int]:
    c = system.unet.config
    return (c.in_channels, c.sample_size, c.sample_size)


@torch.no_grad()
def sample_latents(system: LoadedSystem, captions: list[str], indices: list[int], batch_id: int,
                   noise: torch.Tensor | None = None) -> torch.Tensor:
    """Latents for ``captions``; ``noise`` replaces the (seed, index) start latents (e.g. a lower temperature)."""
    spec = system.spec
    # noise is drawn on the CPU from (seed, index), so every device starts from the same latents
    if noise is None:
        noise = initial_noise(indices, latent_shape(system), spec.seed)
    noise = noise.to(system.device, system.dtype)
    cond = encode_prompts(system, captions)
    if spec.kind == "onestep":
        return one_step_x0(system.unet, system.scheduler, noise, cond)
    uncond = encode_prompts(system, [""] * len(captions)) if spec.cfg != 1.0 else None
    sched = system.scheduler
    sched.set_timesteps(spec.steps)
    gen = torch.Generator().manual_seed(seed_for(spec.seed, batch_id, SCHEDULER_STREAM))
    lat = noise * sched.init_noise_sigma
    for t in sched.timesteps:
        if uncond is None:
            eps = system.unet(sched.scale_model_input(lat, t), t, cond).sample
        else:
            inp = sched.scale_model_input(torch.cat([lat, lat]), t)
            eps_u, eps_c = system.unet(inp, t, torch.cat([uncond, cond])).sample.chunk(2)
            eps = eps_u + spec.cfg * (eps_c - eps_u)
        lat = sched.step(eps, t, lat, generator=gen).prev_sample
    return lat


def one_step_x0(unet, scheduler, noise: torch.Tensor, cond: torch.Tensor, t: int | None = None) -> torch.Tensor:
    """The student's image: x0 = (z - sqrt(1 - abar) eps) / sqrt(abar) at t = T - 1."""
    t = scheduler.config.num_train_timesteps - 1 if t is None else t
    abar = scheduler.alphas_cumprod[t].to(noise.device, noise.dtype)
    tt = torch.full((len(noise),), t, dtype=torch.long, device=noise.device)
    eps = unet(noise, tt, cond).sample
    return (noise - (1 - abar).sqrt() * eps) / abar.sqrt()


def shard_batches(indices: list[int], batch_size: int, shard: int, n_shards: int) -> list[list[int]]:
    """Whole global batches of consecutive positions that belong to ``shard``."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} out of range for {n_shards} shards")
    batches = [indices[i:i + batch_size] for i in range(0, len(indices), batch_size)]
    return [b for k, b in enumerate(batches) if k % n_shards == shard]


def runtime_record(system: LoadedSystem) -> dict:
    """Where the images were computed; images are reproducible on the same device type and dtype."""
    gpu = torch.cuda.get_device_name(0) if system.device == "cuda" else None
    return {"device": system.device, "dtype": str(system.dtype).removeprefix("torch."), "gpu": gpu,
            "torch": torch.__version__}


def _render(system: LoadedSystem, prompts: list[dict], folder: Path, batch_size: int, shard: int = 0,
            n_shards: int = 1) -> None:
    """This shard's global batches of ``prompts`` as ``folder/{index:06d}.png``."""
    positions = list(range(len(prompts)))
    batches = shard_batches(positions, batch_size, shard, n_shards)
    final = folder.parent / folder.name.split(".tmp-")[0].lstrip(".")  # atomic_dir's temporary folder -> its target
    progress = Progress(f"sample {final}", sum(map(len, batches)), "img")
    for batch in batches:
        rows = [prompts[p] for p in batch]
        idx = [r["index"] for r in rows]
        lat = sample_latents(system, [r["caption"] for r in rows], idx, batch[0] // batch_size)
        for i, img in zip(idx, decode(system, lat)):
            Image.fromarray(img).save(folder / f"{i:06d}.png")
        progress.update(len(batch))


def generate_shard(spec: SystemSpec, prompts: list[dict], out: Path, shard: int = 0, n_shards: int = 1,
                   batch_size: int = 64, threads: int | None = None, device: str = "cpu",
                   dtype: str = "float32") -> Path:
    """Render this shard's prompts to ``out/{index:06d}.png`` atomically (all or nothing)."""
    if threads:
        torch.set_num_threads(threads)
    dev, dt = resolve_runtime(device, dtype)
    system = load_system(spec, dev, dt)
    with atomic_dir(out) as tmp:
        _render(system, prompts, tmp, batch_size, shard, n_shards)
        write_json(tmp / "shard.json", {"system": asdict(spec), "shard": shard, "n_shards": n_shards,
                                        "batch_size": batch_size, "runtime": runtime_record(system),
                                        "provenance": system.provenance})
    return out


def generate_sets(spec: SystemSpec, prompt_sets: dict[str, list[dict]], out: Path, batch_size: int = 64,
                  threads: int | None = None, device: str = "cpu", dtype: str = "float32") -> Path:
    """Render several prompt sets (e.g. the four HPS styles) into ``out/<name>/`` with one model load;
    the whole folder appears at once or not at all."""
    if threads:
        torch.set_num_threads(threads)
    system = load_system(spec, *resolve_runtime(device, dtype))
    with atomic_dir(out) as tmp:
        for name, prompts in prompt_sets.items():
            folder = tmp / name
            folder.mkdir()
            _render(system, prompts, folder, batch_size)
            write_manifest(folder, asdict(spec), system.provenance, [runtime_record(system)])
    return out
