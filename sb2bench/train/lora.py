"""peft LoRA adapters on diffusers UNets: add, snapshot, restore, export in diffusers' format.

The export folds the scale alpha / r into the up (B) matrices and records lora_alpha = r, so a
loader that ignores the safetensors metadata (older diffusers, other tools, a weight merge) still
reproduces the trained function exactly.
"""
from __future__ import annotations

from pathlib import Path

import torch

from sb2bench.plan.paths import LORA_WEIGHTS

STUDENT_ADAPTER = "student"
TEACHER_ADAPTER = "vsd_lora"


def add_lora(unet, name: str, rank: int, alpha: float, targets: list[str]) -> None:
    """Freeze ``unet`` and add a trainable adapter ``name`` (B = 0, so the function is unchanged)."""
    from peft import LoraConfig

    unet.requires_grad_(False)
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), init_lora_weights=True)
    try:
        unet.add_adapter(config, adapter_name=name)
    except ValueError as exc:
        raise ValueError(f"cannot add LoRA {name!r} on modules {targets}: {exc}. Check the *_lora_targets "
                         f"config key against the UNet's module names.") from exc


def trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the parameters that train (the checkpoint payload of a module)."""
    return {n: p.detach().clone().contiguous() for n, p in module.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    params = dict(module.named_parameters())
    missing = sorted(set(state) ^ {n for n, p in params.items() if p.requires_grad})
    if missing:
        raise ValueError(f"{what}: checkpoint and model disagree on trainable parameters, e.g. {missing[:3]}; "
                         f"the checkpoint belongs to another config")
    for n, t in state.items():
        params[n].copy_(t.to(params[n].device, params[n].dtype))


def lora_state_dict_diffusers(unet, name: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Adapter ``name`` as a diffusers-format state dict (scale folded into B) and its peft metadata."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    config = unet.peft_config[name]
    scale = config.lora_alpha / config.r
    sd = get_peft_model_state_dict(unet, adapter_name=name)
    sd = {k: (v * scale if ".lora_B." in k else v).detach().float().cpu().contiguous() for k, v in sd.items()}
    meta = config.to_dict()
    meta["lora_alpha"] = config.r  # the scale now lives in the weights
    meta = {k: (sorted(v) if isinstance(v, set) else v) for k, v in meta.items()}
    return convert_state_dict_to_diffusers(sd), meta


def save_lora(unet, name: str, folder: Path) -> Path:
    """Write ``folder/pytorch_lora_weights.safetensors`` loadable by ``pipe.load_lora_weights(folder)``."""
    from diffusers import StableDiffusionPipeline

    sd, meta = lora_state_dict_diffusers(unet, name)
    StableDiffusionPipeline.save_lora_weights(str(folder), unet_lora_layers=sd, weight_name=LORA_WEIGHTS,
                                              safe_serialization=True, unet_lora_adapter_metadata=meta)
    return Path(folder) / LORA_WEIGHTS


def fused_copy(unet, name: str):
    """A plain UNet (no peft layers) whose weights are base + adapter ``name`` (for save_pretrained)."""
    import copy

    merged = copy.deepcopy(unet)
    merged.set_adapter(name)
    merged.fuse_lora(adapter_names=[name])
    merged.unload_lora()
    return merged
