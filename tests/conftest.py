"""Shared test setup: offline hub, headless matplotlib, one thread, and a tiny SD-style pipeline."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import sb2bench  # noqa: E402,F401  (installs the torchvision shim before transformers/diffusers/open_clip)

import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

TINY_TEXT_WIDTH = 32

DDIM_CONFIG = {"_class_name": "DDIMScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085,
               "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon",
               "steps_offset": 1}


@pytest.fixture(scope="session")
def toy_tokenizer():
    """The toy CLIPTokenizer (built once; a few seconds)."""
    from sb2bench.toyworld.tokenizer import build_toy_tokenizer

    return build_toy_tokenizer()


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory, toy_tokenizer):
    """A tiny SD-style diffusers pipeline folder: unet, vae, text_encoder, tokenizer, scheduler.

    Treat it as read-only (it is shared by the whole session); copy it before modifying.
    """
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from sb2bench.toyworld.hub import write_model_index

    out = tmp_path_factory.mktemp("toyhub") / "sd-tiny"
    out.mkdir()
    torch.manual_seed(0)
    UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TINY_TEXT_WIDTH, attention_head_dim=8, norm_num_groups=16,
    ).save_pretrained(out / "unet")
    AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=32, block_out_channels=(16, 32),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1, norm_num_groups=8,
    ).save_pretrained(out / "vae")
    n = len(toy_tokenizer)
    CLIPTextModel(CLIPTextConfig(
        vocab_size=n, hidden_size=TINY_TEXT_WIDTH, intermediate_size=64, num_attention_heads=2,
        num_hidden_layers=1, max_position_embeddings=toy_tokenizer.model_max_length,
        bos_token_id=toy_tokenizer.bos_token_id, eos_token_id=toy_tokenizer.eos_token_id,
        pad_token_id=toy_tokenizer.pad_token_id,
    )).save_pretrained(out / "text_encoder")
    toy_tokenizer.save_pretrained(out / "tokenizer")
    (out / "scheduler").mkdir()
    (out / "scheduler" / "scheduler_config.json").write_text(json.dumps(DDIM_CONFIG, indent=2))
    write_model_index(out)
    return out


class _StubInceptionLayers(torch.nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.width = width

    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)  # 3 x 4 x 4 = 48 values
        return pooled.repeat(1, self.width // 48 + 1)[:, :self.width].reshape(-1, self.width, 1, 1)


class _StubInception(torch.nn.Module):
    """clean-fid's Inception file layout: a ``layers`` module from normalised 299-px input to ``width``-d."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = _StubInceptionLayers(width)

    def forward(self, x):
        return self.layers(x)


def _save_stub_inception(folder: Path, width: int) -> Path:
    from sb2bench.evaluate.metrics.features import CLEANFID_FILE

    path = folder / CLEANFID_FILE
    path.parent.mkdir()
    torch.jit.script(_StubInception(width)).save(str(path))
    return path


@pytest.fixture()
def stub_inception(tmp_path):
    """A TorchScript stand-in for clean-fid's inception-2015-12-05.pt with its 2048-d output (feature d =
    pooled 4x4 RGB, repeated)."""
    return _save_stub_inception(tmp_path / "inception", 2048)


@pytest.fixture()
def narrow_stub_inception(tmp_path):
    """The same stand-in with 64-d features: the end-to-end tests' FID (a d x d sqrtm, ~20 s at d = 2048 on one
    core) then costs milliseconds; the 2048-d contract is checked by tests/evaluate/test_features.py."""
    return _save_stub_inception(tmp_path / "inception-narrow", 64)


JOURNEYDB_PROMPTS = ["a castle on a hill, oil painting", "  a castle   on a hill, oil painting ", "",
                     "neon city at night --ar 16:9", "a cat in a hat"]
LAION_CAPTIONS = ["A photo of a dog", "a cat in a hat", None, "A photo of a dog", "sunset over the sea"]
LAION_SCORES = [6.5, 7.0, 8.0, 6.5, 5.0]


def _write_prompt_sources(root: Path) -> dict[str, Path]:
    """Small stand-ins in the formats as distributed: JourneyDB's train annotations (a .jsonl inside a .tgz,
    the text prompt in 'prompt' beside img_path and the Task fields) and LAION metadata parquet files (TEXT
    caption, AESTHETIC_SCORE), with duplicates, blanks, nulls and low scores to filter."""
    import io
    import json
    import tarfile

    import pandas as pd

    jdb = root / "data" / "journeydb" / "data" / "train" / "train_anno_realease_repath.jsonl.tgz"
    jdb.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps({"img_path": f"./{i:03d}/{i:05d}.jpg", "Task1": {"Style": [], "Content": []},
                                "Task2": {"Caption": f"caption {i}"}, "Task3": {}, "prompt": p}) + "\n"
                    for i, p in enumerate(JOURNEYDB_PROMPTS)).encode()
    with tarfile.open(jdb, "w:gz") as tf:
        info = tarfile.TarInfo("train_anno_realease_repath.jsonl")
        info.size = len(lines)
        tf.addfile(info, io.BytesIO(lines))
    out = {"journeydb": jdb}
    for name in ("laion", "laion_aesthetic"):
        folder = root / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"URL": [f"http://x/{i}.jpg" for i in range(5)], "TEXT": LAION_CAPTIONS,
                              "AESTHETIC_SCORE": LAION_SCORES})
        frame.iloc[:3].to_parquet(folder / "part-00000.parquet", index=False)
        frame.iloc[3:].to_parquet(folder / "part-00001.parquet", index=False)
        out[name] = folder
    return out


@pytest.fixture(scope="session")
def prompt_sources():
    """``prompt_sources(root)`` writes the stand-ins under ``root/data`` (where config/paper.yaml looks)."""
    return _write_prompt_sources
