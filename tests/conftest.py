"""Shared test setup: offline hub, headless matplotlib, one thread, and a tiny SD-style pipeline."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import sb2bench  # noqa: E402,F401  (installs the torchvision shim before transformers/diffusers/open_clip)

import json  # noqa: E402

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
    def forward(self, x):
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)  # 3 x 4 x 4 = 48 values
        return pooled.repeat(1, 43)[:, :2048].reshape(-1, 2048, 1, 1)


class _StubInception(torch.nn.Module):
    """clean-fid's Inception file layout: a ``layers`` module from normalised 299-px input to 2048-d."""

    def __init__(self):
        super().__init__()
        self.layers = _StubInceptionLayers()

    def forward(self, x):
        return self.layers(x)


@pytest.fixture()
def stub_inception(tmp_path):
    """A TorchScript stand-in for clean-fid's inception-2015-12-05.pt (feature d = pooled 4x4 RGB)."""
    from sb2bench.evaluate.metrics.features import CLEANFID_FILE

    path = tmp_path / "inception" / CLEANFID_FILE
    path.parent.mkdir()
    torch.jit.script(_StubInception()).save(str(path))
    return path
