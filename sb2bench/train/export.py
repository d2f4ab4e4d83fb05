"""Final artifacts of a run, written as one folder (atomically):

  student/unet/                 full student, diffusers save_pretrained (safetensors)   [scheme full]
  student/unet_ema/             its EMA weights                                       [ema_decay set]
  student/pytorch_lora_weights.safetensors   LoRA student, diffusers keys, for
                                `pipe.load_lora_weights(student/)` on the student_init pipeline [scheme lora]
  student/ema/pytorch_lora_weights.safetensors                                         [lora + ema]
  student/lora_teacher/pytorch_lora_weights.safetensors   the VSD fake score (for analysis)
  student/train_config.json     the resolved config;  student/provenance.json  versions, git commit, hashes
"""
from __future__ import annotations

import copy
from pathlib import Path

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_dir, write_json
from sb2bench._infra.hashing import sha256_file
from sb2bench._infra.provenance import record
from sb2bench.train import lora
from sb2bench.train.config import TrainConfig


def _with_weights(module, state):
    twin = copy.deepcopy(module)
    lora.load_trainable(twin, state, "EMA student")
    return twin


def _describe_lora(folder: Path, cfg: TrainConfig) -> None:
    """lora_config.json names the base UNet, so samplers and merges can fuse the student on their own;
    the alpha / rank scale is already folded into the saved weights, hence alpha = rank."""
    from sb2bench.merge.interpolate import write_lora_config

    write_lora_config(folder, base=cfg.student_init, rank=cfg.student_lora_rank, alpha=cfg.student_lora_rank,
                      target_modules=cfg.student_lora_targets, base_subfolder=cfg.student_init_subfolder or None)


def export_student(final: Path, cfg: TrainConfig, student, teacher_unet, ema, summary: dict) -> Path:
    with atomic_dir(final) as tmp:
        if cfg.scheme == "full":
            student.save_pretrained(tmp / "unet", safe_serialization=True)
            if ema is not None:
                _with_weights(student, ema.state_dict()).save_pretrained(tmp / "unet_ema", safe_serialization=True)
        else:
            lora.save_lora(student, lora.STUDENT_ADAPTER, tmp)
            _describe_lora(tmp, cfg)
            if ema is not None:
                lora.save_lora(_with_weights(student, ema.state_dict()), lora.STUDENT_ADAPTER, tmp / "ema")
                _describe_lora(tmp / "ema", cfg)
        lora.save_lora(teacher_unet, lora.TEACHER_ADAPTER, tmp / "lora_teacher")
        write_json(tmp / "train_config.json", cfg.to_dict())
        write_json(tmp / "provenance.json", record(
            config_hash=cfg.semantic_hash(), scheme=cfg.scheme, teacher=zoo.describe(cfg.teacher),
            student_init=zoo.describe(cfg.student_init),
            prompts={"path": cfg.prompts, "sha256": sha256_file(cfg.prompts)}, **summary))
    return final
