"""LoRA students fused into their base UNet, W <- W + (alpha / rank)·B@A, for loading and merging.

A LoRA folder describes itself, so a sampler (``sb2bench.sample``) or a merge (``sb2bench.merge.interpolate``)
loads it as a plain UNet without the training config. Layout (names owned by ``sb2bench.plan.paths``)::

    lora_config.json        {"format": "sb2bench-lora/1", "base": "<zoo spec of the base UNet>",
                             "base_subfolder": "unet", "rank": 4, "alpha": 8,
                             "target_modules": ["to_q", "to_v"]}
    pytorch_lora_weights.safetensors    diffusers format (keys optionally prefixed "unet."), or
    adapter_config.json + adapter_model.safetensors   a peft adapter saved from PeftModel(unet)
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sb2bench._infra.atomic import write_json
from sb2bench.models import zoo
from sb2bench.plan.paths import LORA_CONFIG, LORA_WEIGHTS, UNET

LORA_FORMAT = "sb2bench-lora/1"
PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
ADAPTER = "sb2bench_fused"


class LoraError(ValueError):
    """A LoRA folder that cannot be read or fused; the message names it and the fix."""


@dataclass(frozen=True)
class LoraSpec:
    """A parsed LoRA folder: where its weights are and which UNet they adapt."""
    folder: Path
    base: str
    base_subfolder: str | None
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    weights: Path
    kind: str  # "diffusers" | "peft"

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def write_lora_config(folder: str | Path, base: str, rank: int, alpha: float, target_modules: list[str],
                      base_subfolder: str | None = UNET) -> Path:
    """Write the small JSON that makes a LoRA folder self-describing (trainers call this on export)."""
    path = Path(folder) / LORA_CONFIG
    write_json(path, {"format": LORA_FORMAT, "base": base, "base_subfolder": base_subfolder, "rank": int(rank),
                      "alpha": float(alpha), "target_modules": sorted(target_modules)})
    return path


def _local_dir(spec: str) -> Path | None:
    try:
        ref = zoo.resolve(spec)
    except zoo.ModelNotFoundError:
        return None
    return ref.path if ref.kind == "local" and ref.path.is_dir() else None


def read_lora(spec: str) -> LoraSpec | None:
    """The LoRA described by ``spec``, or None when ``spec`` is not a LoRA folder."""
    folder = _local_dir(spec)
    if folder is None:
        return None
    has_weights = (folder / LORA_WEIGHTS).exists() or (folder / PEFT_WEIGHTS).exists()
    if not (folder / LORA_CONFIG).exists():
        if has_weights:
            raise LoraError(
                f"{spec!r} holds LoRA weights but no {LORA_CONFIG}, so its base UNet is unknown. Add "
                f'{folder / LORA_CONFIG} like {{"format": "{LORA_FORMAT}", "base": "<base UNet spec>", '
                f'"base_subfolder": "{UNET}", "rank": R, "alpha": A, "target_modules": ["to_q", "to_v"]}} '
                f"(sb2bench.models.lora.write_lora_config writes it).")
        return None
    try:
        cfg = json.loads((folder / LORA_CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise LoraError(f"{folder / LORA_CONFIG} is not valid JSON ({exc})") from exc
    missing = [k for k in ("base", "rank", "alpha", "target_modules") if k not in cfg]
    if missing or cfg.get("format", LORA_FORMAT) != LORA_FORMAT:
        raise LoraError(f"{folder / LORA_CONFIG}: needs format {LORA_FORMAT!r} and keys base, rank, alpha, "
                         f"target_modules; missing {missing}, format {cfg.get('format')!r}.")
    if int(cfg["rank"]) <= 0 or float(cfg["alpha"]) <= 0:
        raise LoraError(f"{folder / LORA_CONFIG}: rank and alpha must be positive, got {cfg['rank']}, {cfg['alpha']}")
    if (folder / LORA_WEIGHTS).exists():
        weights, kind = folder / LORA_WEIGHTS, "diffusers"
    elif (folder / PEFT_WEIGHTS).exists() and (folder / PEFT_CONFIG).exists():
        weights, kind = folder / PEFT_WEIGHTS, "peft"
    else:
        raise LoraError(f"LoRA folder {spec!r} has {LORA_CONFIG} but no {LORA_WEIGHTS} and no "
                         f"{PEFT_CONFIG} + {PEFT_WEIGHTS}.")
    lora = LoraSpec(folder, str(cfg["base"]), cfg.get("base_subfolder", UNET), int(cfg["rank"]),
                    float(cfg["alpha"]), tuple(cfg["target_modules"]), weights, kind)
    if kind == "peft":
        _check_peft_config(lora)
    return lora


def _check_peft_config(lora: LoraSpec) -> None:
    """A peft adapter carries its own r / alpha: they must agree with lora_config.json."""
    pc = json.loads((lora.folder / PEFT_CONFIG).read_text())
    theirs = {"rank": pc.get("r"), "alpha": pc.get("lora_alpha"), "target_modules": pc.get("target_modules")}
    if theirs["rank"] is None or theirs["alpha"] is None:
        raise LoraError(f"{lora.folder / PEFT_CONFIG} lacks r or lora_alpha; is this a LoRA adapter?")
    if pc.get("use_dora") or pc.get("use_rslora") or pc.get("rank_pattern") or pc.get("alpha_pattern"):
        raise LoraError(f"{lora.folder / PEFT_CONFIG}: DoRA, rsLoRA and per-module rank/alpha patterns are "
                         f"not supported; export a plain LoRA.")
    ours = {"rank": lora.rank, "alpha": lora.alpha, "target_modules": lora.target_modules}
    targets = theirs["target_modules"]
    if theirs["rank"] != ours["rank"] or float(theirs["alpha"]) != ours["alpha"] or (
            isinstance(targets, list) and sorted(targets) != sorted(ours["target_modules"])):
        raise LoraError(f"{lora.folder}: {PEFT_CONFIG} says {theirs} but {LORA_CONFIG} says {ours}; make them agree.")


def unet_source(spec: str) -> tuple[str, str | None, LoraSpec | None]:
    """(UNet spec, subfolder, LoRA or None): where the weights of ``spec`` come from."""
    lora = read_lora(spec)
    if lora is not None:
        if read_lora(lora.base) is not None:
            raise LoraError(f"LoRA {spec!r} names another LoRA {lora.base!r} as base; its base must be a full UNet.")
        return lora.base, lora.base_subfolder, lora
    return spec, UNET, None


def _lora_state_dict(lora: LoraSpec) -> dict[str, torch.Tensor]:
    """LoRA tensors keyed relative to the UNet, in peft naming (``<module>.lora_A.weight``)."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from safetensors.torch import load_file

    sd = load_file(str(lora.weights))
    if lora.kind == "peft":
        sd = {k.removeprefix("base_model.model."): v for k, v in sd.items()}
    else:
        foreign = sorted({k.split(".")[0] for k in sd if k.startswith(("text_encoder", "te_", "lora_te"))})
        if foreign:
            raise LoraError(f"{lora.weights} also holds text-encoder LoRA weights ({foreign}); only the "
                             f"UNet's is fused. Export the UNet LoRA alone.")
        if sd and all(k.startswith("unet.") for k in sd):
            sd = {k.removeprefix("unet."): v for k, v in sd.items()}
        sd = convert_unet_state_dict_to_peft(sd)
    if not sd:
        raise LoraError(f"{lora.weights} holds no LoRA tensors.")
    ranks = {v.shape[0] for k, v in sd.items() if ".lora_A." in k}
    if ranks != {lora.rank}:
        raise LoraError(f"{lora.weights}: LoRA ranks {sorted(ranks)} in the weights, but {LORA_CONFIG} says "
                         f"rank {lora.rank}.")
    return sd


def fuse_lora(unet, lora: LoraSpec):
    """Fuse ``lora`` into ``unet`` in place: W ← W + (alpha / rank)·B@A; the UNet keeps its plain layout."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict

    sd = _lora_state_dict(lora)
    unet.add_adapter(LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=list(lora.target_modules),
                                init_lora_weights=False), adapter_name=ADAPTER)
    result = set_peft_model_state_dict(unet, sd, adapter_name=ADAPTER)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in (getattr(result, "missing_keys", []) or []) if f".{ADAPTER}." in k and "lora_" in k]
    if unexpected or missing:
        raise LoraError(f"LoRA {lora.folder} does not fit base {lora.base!r} with target_modules "
                         f"{list(lora.target_modules)}: {len(unexpected)} unexpected keys (e.g. {unexpected[:2]}), "
                         f"{len(missing)} LoRA weights not in the file (e.g. {missing[:2]}). Check base and "
                         f"target_modules in {LORA_CONFIG}.")
    unet.fuse_lora(lora_scale=1.0, safe_fusing=True, adapter_names=[ADAPTER])
    unet.unload_lora()
    return unet


def load_fused_unet(spec: str, dtype: torch.dtype = torch.float32):
    """The UNet ``spec`` stands for (a LoRA folder: fused into its base), in ``dtype``."""
    unet_spec, subfolder, lora = unet_source(spec)
    unet = zoo.load_unet(unet_spec, subfolder=subfolder, torch_dtype=dtype)
    if lora is not None:
        fuse_lora(unet, lora)
    return unet.to(dtype)
