"""Shared by the GPU comparison benches: SD 2.1-base architectures written inline (no hub access), a
toy-size variant of the same block layout for CPUs, machine/version records and the report writer.

``sd21`` is the published SD 2.1-base configuration (UNet 865.9 M, VAE 83.7 M, OpenCLIP-H text encoder
340.4 M parameters; ``check_sd21_params`` verifies these counts on the meta device). ``toy`` keeps
every block type, depth and attention layout and shrinks widths and resolution so a CPU runs it in seconds.
Weights are random: speed and memory do not depend on their values.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sb2bench  # noqa: E402,F401  (torchvision shim before diffusers)
import torch  # noqa: E402

from sb2bench._infra.atomic import atomic_file, write_json  # noqa: E402
from sb2bench._infra.provenance import git_commit, package_versions  # noqa: E402

SIZES = {
    "sd21": {
        "unet": dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                     block_out_channels=(320, 640, 1280, 1280),
                     down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                     cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
                     norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu"),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2,
                    block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=512,
                    scaling_factor=0.18215),
        "text": dict(vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                     num_hidden_layers=23, max_position_embeddings=77, hidden_act="gelu", projection_dim=512),
        "lora": {"teacher_rank": 64, "teacher_alpha": 128.0, "student_rank": 256, "student_alpha": 512.0},
        "params_m": {"unet": 865.9, "vae": 83.65, "text": 340.4},
    },
    "toy": {
        "unet": dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=2,
                     block_out_channels=(32, 64, 64, 64),
                     down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                     up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                     cross_attention_dim=64, attention_head_dim=(2, 4, 4, 4), use_linear_projection=True,
                     norm_num_groups=32, flip_sin_to_cos=True, freq_shift=0, act_fn="silu"),
        "vae": dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                    block_out_channels=(32, 32, 32, 32), down_block_types=("DownEncoderBlock2D",) * 4,
                    up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, sample_size=128,
                    scaling_factor=0.18215),
        "text": dict(vocab_size=49408, hidden_size=64, intermediate_size=256, num_attention_heads=4,
                     num_hidden_layers=2, max_position_embeddings=77, hidden_act="gelu", projection_dim=64),
        "lora": {"teacher_rank": 4, "teacher_alpha": 8.0, "student_rank": 8, "student_alpha": 16.0},
        "params_m": None,
    },
}
SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 prediction_type="epsilon", clip_sample=False, steps_offset=1)


def build_unet(size: str, seed: int = 0):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(**SIZES[size]["unet"])


def build_vae(size: str, seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(**SIZES[size]["vae"])


def build_text_encoder(size: str, seed: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    return CLIPTextModel(CLIPTextConfig(**SIZES[size]["text"]))


def build_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(**SCHEDULER)


def check_sd21_params() -> dict:
    """Parameter counts (millions) of the inline SD 2.1-base configs, built on the meta device (no memory)."""
    with torch.device("meta"):
        counts = {name: sum(p.numel() for p in fn("sd21").parameters()) / 1e6
                  for name, fn in (("unet", build_unet), ("vae", build_vae), ("text", build_text_encoder))}
    for name, expected in SIZES["sd21"]["params_m"].items():
        if abs(counts[name] - expected) > 0.5:
            raise AssertionError(f"inline SD 2.1-base {name} config has {counts[name]:.2f} M parameters, "
                                 f"expected {expected} M: the config in bench/_arch.py is wrong")
    return {k: round(v, 2) for k, v in counts.items()}


def resolve_device(device: str) -> str:
    """The evaluation's device rule (auto = the GPU when there is one), as a command-line error."""
    from sb2bench.evaluate.score import resolve_device as _resolve

    try:
        return _resolve(device)
    except ValueError as exc:
        raise SystemExit(f"--device {device}: {exc}") from exc


def machine(device: str) -> dict:
    """The timing protocol's hardware record (CPU, GPU, versions), so benches and Table 8 agree."""
    from sb2bench.evaluate.timing import hardware

    return hardware(device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def write_report(name: str, title: str, record: dict, table: list[str], notes: list[str], out_dir: Path) -> Path:
    """reports/bench/<name>.{json,md}: the figures, the machine, versions and the command that reran them."""
    command = "python " + " ".join([f"bench/{name}.py", *sys.argv[1:]])
    record = {**record, "versions": package_versions(), "git_commit": git_commit(), "command": command}
    out = Path(out_dir) / name
    write_json(out.with_suffix(".json"), record)
    m = record["machine"]
    where = m.get("gpu") or f"{m['cpu']} ({m['torch_threads']} torch threads)"
    v = record["versions"]
    lines = [f"# {title}", "", f"Machine: {where}; torch {v['torch']}, diffusers {v['diffusers']}, "
             f"peft {v['peft']}.", "", *table, "", *notes, "", f"Rerun: `{command}`"]
    with atomic_file(out.with_suffix(".md")) as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True)
