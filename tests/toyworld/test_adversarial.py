"""The toy turbo's adversarial phase (toyworld/adversarial.py) on the tiny pipeline: it runs, it trains, and it
is off unless configured (the shipped turbo's recipe stays the regression alone)."""
import json

import torch
from safetensors.torch import load_file

from sb2bench.toyworld.adversarial import Discriminator
from sb2bench.toyworld.train_turbo import train_turbo

TURBO = {"seed": 0, "n_pairs": 8, "teacher_steps": 2, "teacher_cfg": 4.5, "pair_batch_size": 8, "steps": 2,
         "batch_size": 4, "lr": 1e-4, "ema_decay": 0.9, "threads": 1}
ADVERSARIAL = {"steps": 3, "weight": 1.0, "regression_weight": 1.0, "lr": 1e-4, "disc_lr": 2e-4, "batch_size": 4,
               "n_real": 16, "ema_decay": 0.5}


def test_critic_scores_each_image_and_reads_the_caption():
    torch.manual_seed(0)
    critic = Discriminator(text_dim=32, width=8)
    images, text = torch.randn(5, 3, 32, 32), torch.randn(5, 32)
    scores = critic(images, text)
    assert scores.shape == (5,)
    assert not torch.allclose(scores, critic(images, torch.randn(5, 32)))


def _weights(folder):
    return load_file(str(next((folder / "unet").glob("*.safetensors"))))


def test_adversarial_phase_trains_the_regressed_turbo(tiny_pipeline_dir, tmp_path):
    plain = train_turbo(tmp_path / "plain", tiny_pipeline_dir, TURBO, tmp_path / "cache")
    adv = train_turbo(tmp_path / "adv", tiny_pipeline_dir, {**TURBO, "adversarial": ADVERSARIAL}, tmp_path / "cache")
    assert "adversarial_history" not in plain
    assert [row["step"] for row in adv["adversarial_history"]] == [0, 1, 2]
    assert {"critic", "adversarial", "regression"} <= set(adv["adversarial_history"][-1])
    json.dumps(adv["adversarial_history"])  # it goes into training.json
    a, b = _weights(tmp_path / "plain"), _weights(tmp_path / "adv")
    assert a.keys() == b.keys()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # no adversarial steps: the regression's weights, bit for bit
    off = train_turbo(tmp_path / "off", tiny_pipeline_dir, {**TURBO, "adversarial": {**ADVERSARIAL, "steps": 0}},
                      tmp_path / "cache")
    assert "adversarial_history" not in off
    c = _weights(tmp_path / "off")
    assert all(torch.equal(a[k], c[k]) for k in a)
