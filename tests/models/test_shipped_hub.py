"""The toy hub shipped in the package: loadable through the zoo, and made by the documented config."""
import json
from pathlib import Path

import torch

from sb2bench.models import zoo
from sb2bench.plan.config import load_config
from sb2bench.sample.generate import SystemSpec, generate_shard

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_hub_loads_through_the_zoo(monkeypatch):
    monkeypatch.delenv("SB2BENCH_TOY_HUB", raising=False)
    tok = zoo.load_tokenizer("toy:sd-toy")
    assert len(tok) == zoo.load_text_encoder("toy:sd-toy").config.vocab_size
    assert zoo.load_unet("toy:sd-toy-turbo").config.sample_size == 8
    assert zoo.load_tiny_vae("toy:taesd-toy").config.latent_channels == 4
    clip = zoo.load_open_clip("toy:clip-toy")
    assert clip.model.encode_image(torch.zeros(1, 3, 32, 32)).shape[-1] == 64
    feats = zoo.load_torchscript("toy:inception-toy")(torch.full((2, 3, 32, 32), 128.0))
    assert feats.shape[0] == 2
    assert len(zoo.load_classifier("toy:classifier-toy").heads) == 6


def test_shipped_teacher_generates(tmp_path):
    spec = SystemSpec(name="t", pipeline="toy:sd-toy", steps=2, cfg=4.5)
    out = generate_shard(spec, [{"index": 0, "caption": "a red circle"}], tmp_path / "img", batch_size=1)
    assert (out / "000000.png").exists()


def test_shipped_hub_was_trained_with_the_default_config():
    """`snakemake toy_hub --config toy='{hub: retrain}'` uses exactly the recorded parameters."""
    shipped = json.loads((ROOT / "sb2bench/toyworld/hub/PROVENANCE.json").read_text())
    training = load_config(ROOT / "config" / "default.yaml")["toy"]["training"]
    assert {r["component"] for r in shipped} == set(training)
    for record in shipped:
        assert record["params"] == training[record["component"]], record["component"]
