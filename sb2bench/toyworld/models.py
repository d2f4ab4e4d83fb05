"""Architectures of the toy hub, built from the same library classes as the real models.

Sizes are chosen for a 2-core CPU: 32 px images, a 4x VAE giving 8x8x4 latents, a
text encoder over the toy vocabulary, and a two-level UNet with attention at both levels.
"""
from __future__ import annotations

import torch
from torch import nn

LATENT_CHANNELS = 4
LATENT_SIZE = 8
TEXT_WIDTH = 64


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=LATENT_CHANNELS, sample_size=32,
        block_out_channels=[32, 64, 64], down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3, layers_per_block=1, norm_num_groups=16)


def build_tiny_vae():
    from diffusers import AutoencoderTiny

    return AutoencoderTiny(
        encoder_block_out_channels=(32, 32, 32), decoder_block_out_channels=(32, 32, 32),
        num_encoder_blocks=(1, 1, 1), num_decoder_blocks=(1, 1, 1), latent_channels=LATENT_CHANNELS)


def build_text_encoder(vocab_size: int, max_length: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH,
                         num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=max_length,
                         bos_token_id=vocab_size - 2, eos_token_id=vocab_size - 1, pad_token_id=vocab_size - 1)
    return CLIPTextModel(cfg)


def build_unet(width: int = 48):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT_SIZE, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        layers_per_block=2, block_out_channels=(width, 2 * width),
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=4, norm_num_groups=16,
        use_linear_projection=True)


def build_scheduler_config() -> dict:
    """SD 2.1-base's noise schedule (epsilon prediction, scaled-linear betas)."""
    return dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012,
                beta_schedule="scaled_linear", prediction_type="epsilon", clip_sample=False,
                set_alpha_to_one=False, steps_offset=1, timestep_spacing="trailing")


class AttributeNet(nn.Module):
    """BatchNorm convnet with one head per attribute; also the toy Inception backbone."""

    def __init__(self, head_sizes: list[int], widths: tuple[int, ...] = (32, 64, 128, 128),
                 feature_dim: int = 128):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i, c in enumerate(widths):
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                  nn.Linear(c_in, feature_dim), nn.ReLU(inplace=True))
        self.heads = nn.ModuleList([nn.Linear(feature_dim, n) for n in head_sizes])
        self.head_sizes = list(head_sizes)

    def features(self, x01: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, feature_dim); resized to 32 px first."""
        if x01.shape[-1] != 32 or x01.shape[-2] != 32:
            x01 = nn.functional.interpolate(x01, size=(32, 32), mode="bilinear", antialias=True,
                                            align_corners=False)
        return self.body((x01 - 0.5) / 0.25)

    def forward(self, x01: torch.Tensor) -> list[torch.Tensor]:
        f = self.features(x01)
        return [h(f) for h in self.heads]


class InceptionStandIn(nn.Module):
    """TorchScript-able wrapper with clean-fid's calling convention: [0, 255] in, features out."""

    def __init__(self, net: AttributeNet):
        super().__init__()
        self.net = net

    def forward(self, x255: torch.Tensor) -> torch.Tensor:
        return self.net.features(x255 / 255.0)


def clip_model_config() -> dict:
    """open_clip model config of the toy CLIP (a small ViT over 32 px images)."""
    return {"embed_dim": 64,
            "vision_cfg": {"image_size": 32, "layers": 3, "width": 96, "head_width": 32, "patch_size": 4},
            "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}
