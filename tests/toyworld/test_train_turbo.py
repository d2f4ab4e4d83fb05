"""The toy turbo's regression targets (toyworld/train_turbo.py): `noise_scale` reaches the teacher's sampling,
absent means 1 (the shipped hub's recipe, bit for bit), and a scale outside (0, 1] is refused by name."""
import pytest
import torch

from sb2bench.plan.config import validate_config
from sb2bench.plan.errors import ConfigError
from sb2bench.toyworld.train_turbo import teacher_pairs

TURBO = {"seed": 0, "n_pairs": 4, "teacher_steps": 2, "teacher_cfg": 4.5, "pair_batch_size": 4, "steps": 1,
         "batch_size": 2, "lr": 1e-4, "ema_decay": 0.9, "threads": 1}


def test_noise_scale_changes_the_targets_not_the_noise(tiny_pipeline_dir):
    z, x0, captions = teacher_pairs(tiny_pipeline_dir, TURBO)
    z1, x1, captions1 = teacher_pairs(tiny_pipeline_dir, {**TURBO, "noise_scale": 1.0})
    z_half, x_half, _ = teacher_pairs(tiny_pipeline_dir, {**TURBO, "noise_scale": 0.5})
    assert torch.equal(x0, x1) and torch.equal(z, z1) and captions == captions1  # absent == 1
    assert torch.equal(z, z_half)  # the student's input noise is the same ...
    assert not torch.allclose(x0, x_half)  # ... its target is the teacher's sample from 0.5 · z


@pytest.mark.parametrize("scale", [0, 1.5])
def test_noise_scale_outside_unit_interval_is_refused_by_name(scale):
    with pytest.raises(ConfigError, match="noise_scale"):
        validate_config({"toy": {"training": {"turbo": {"noise_scale": scale}}}})
