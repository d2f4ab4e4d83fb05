"""Drift diagnostics (sb2bench/train/diagnostics.py), the LoRA turn's fresh samples and the LoRA student's lr."""
import csv

import pytest
import torch
from test_train_run import config as run_config
from test_train_step import make_config, setup

from sb2bench.train import TrainConfig, diagnostics, run
from sb2bench.train.step import lora_turn


def test_bucket_stats_by_hand():
    g = torch.Generator().manual_seed(0)
    eps_c, eps_u, noise = (torch.randn(3, 4, 2, 2, generator=g) for _ in range(3))
    # a LoRA teacher equal to the frozen one at lora_cfg 1: the update is exactly the guidance term
    same = diagnostics.bucket_stats(eps_c, eps_u, eps_c, eps_u, noise, 4.5, 1.0)
    assert same["cos_guidance"] == pytest.approx(1.0, abs=1e-6)
    assert same["mse_lora"] == same["mse_frozen"] == pytest.approx(((eps_c - noise) ** 2).mean().item())
    # ... and at the teacher's cfg (SBv1's form) the update vanishes: cosine 0 by definition
    assert diagnostics.bucket_stats(eps_c, eps_u, eps_c, eps_u, noise, 4.5, 4.5)["cos_guidance"] == 0.0
    # a LoRA teacher on the far side of the guidance term: cosine -1
    flipped = eps_c + 2 * 3.5 * (eps_c - eps_u)
    assert diagnostics.bucket_stats(eps_c, eps_u, flipped, eps_u, noise, 4.5, 1.0)["cos_guidance"] == \
        pytest.approx(-1.0, abs=1e-6)
    # an update orthogonal to the guidance term in every sample: cosine 0
    d = eps_c - eps_u
    ortho = torch.stack([torch.roll(x.flatten(), 1).view_as(x) for x in d])
    ortho = ortho - (ortho * d).flatten(1).sum(1).view(-1, 1, 1, 1) / (d ** 2).flatten(1).sum(1).view(-1, 1, 1, 1) * d
    teacher = eps_u + 4.5 * d
    stats = diagnostics.bucket_stats(eps_c, eps_u, teacher - ortho, eps_u, noise, 4.5, 1.0)
    assert stats["cos_guidance"] == pytest.approx(0.0, abs=1e-5)
    assert stats["mse_lora"] == pytest.approx(((teacher - ortho - noise) ** 2).mean().item(), rel=1e-6)


def test_columns_name_each_quantity_per_bucket():
    assert len(diagnostics.COLUMNS) == len(diagnostics.BUCKETS) * 3 == 9
    assert "cos_guidance_t700_980" in diagnostics.COLUMNS and "mse_frozen_t20_400" in diagnostics.COLUMNS
    lo = [b[0] for b in diagnostics.BUCKETS.values()]
    hi = [b[1] for b in diagnostics.BUCKETS.values()]
    assert lo[0] == 20 and hi[-1] == 981 and lo[1:] == hi[:-1]  # SBv1's 20..980, contiguous


@pytest.mark.parametrize("teacher_unet", ["split", "shared"])
def test_drift_at_init_is_pure_guidance_and_touches_no_random_stream(tiny_pipeline_dir, tmp_path, teacher_unet):
    """The LoRA teacher starts as the frozen teacher (B = 0): equal MSEs, and at lora_cfg 1 cosine 1."""
    cfg = make_config(tiny_pipeline_dir, tmp_path, lora_cfg=1.0, batch_size=3, teacher_unet=teacher_unet)
    p, cond, null = setup(cfg, tmp_path)
    gen, rng = p.gen.get_state(), torch.get_rng_state()
    d = diagnostics.drift(p, 5, cond, null)
    assert tuple(d) == diagnostics.COLUMNS
    assert all(torch.isfinite(torch.tensor(v)) for v in d.values())
    for b in diagnostics.BUCKETS:
        assert d[f"mse_lora_{b}"] == pytest.approx(d[f"mse_frozen_{b}"], rel=1e-6) and d[f"mse_lora_{b}"] > 0
        assert d[f"cos_guidance_{b}"] == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(p.gen.get_state(), gen) and torch.equal(torch.get_rng_state(), rng)
    assert diagnostics.drift(p, 5, cond, null) == d  # seeded by (seed, step): repeatable
    assert diagnostics.drift(p, 6, cond, null) != d


def test_extra_lora_updates_see_fresh_student_samples(tiny_pipeline_dir, tmp_path):
    """The first LoRA update noises the student turn's x0; each further one a new student batch."""
    p, cond, null = setup(make_config(tiny_pipeline_dir, tmp_path, lora_updates_per_step=3), tmp_path)
    noised, student_outputs, add_noise = [], [], p.scheduler.add_noise
    p.scheduler.add_noise = lambda x0, noise, t: (noised.append(x0.clone()), add_noise(x0, noise, t))[1]
    hook = p.student.register_forward_hook(lambda m, args, out: student_outputs.append(out.sample.clone()))
    x0 = torch.zeros(2, 4, 8, 8)
    logs = lora_turn(p, 0, [(p.gen, x0, cond[:2])], null, cond)
    hook.remove()
    assert logs["loss_lora"] > 0 and len(noised) == 3 and len(student_outputs) == 2
    assert torch.equal(noised[0], x0)
    assert all(n.abs().sum() > 0 for n in noised[1:]) and not torch.equal(noised[1], noised[2])
    assert not torch.equal(student_outputs[0], student_outputs[1])  # fresh noise each time


def test_a_run_logs_diagnostics_without_changing_what_it_trains(tiny_pipeline_dir, tmp_path):
    cfg = run_config(tiny_pipeline_dir, tmp_path, log_every=3)
    plain = run(cfg, tmp_path / "plain")
    diag = run({**cfg, "diagnostics_every": 2}, tmp_path / "diag")
    a = (plain / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    assert a == (diag / "unet" / "diffusion_pytorch_model.safetensors").read_bytes()
    with open(tmp_path / "diag" / "log.csv", newline="") as f:
        logged = list(csv.DictReader(f))
    assert [r["step"] for r in logged] == ["1", "2", "3", "4"]  # diagnostics steps 1, 2, 4 plus log_every 3
    assert all(logged[i][c] for i in (0, 1, 3) for c in diagnostics.COLUMNS) and not logged[2]["mse_lora_t20_400"]
    assert all(torch.isfinite(torch.tensor(float(logged[0][c]))) for c in diagnostics.COLUMNS)
    with open(tmp_path / "plain" / "log.csv", newline="") as f:
        assert not set(diagnostics.COLUMNS) & set(csv.DictReader(f).fieldnames)


def test_student_lora_lr_drives_the_lora_student_only():
    base = {"teacher": "t", "student_init": "s", "prompts": "p", "student_lr": 1e-6}
    assert TrainConfig.from_dict({**base, "scheme": "lora"}).student_optimizer_lr == 1e-6  # paper: one lr
    assert TrainConfig.from_dict({**base, "scheme": "lora", "student_lora_lr": 3e-4}).student_optimizer_lr == 3e-4
    assert TrainConfig.from_dict({**base, "student_lora_lr": 3e-4}).student_optimizer_lr == 1e-6  # full scheme
    with pytest.raises(ValueError, match="student_lora_lr"):
        TrainConfig.from_dict({**base, "student_lora_lr": 0})
    with pytest.raises(ValueError, match="diagnostics_every"):
        TrainConfig.from_dict({**base, "diagnostics_every": -1})
    plain = TrainConfig.from_dict(base).semantic_hash()
    assert TrainConfig.from_dict({**base, "diagnostics_every": 5}).semantic_hash() == plain  # observation only
    assert TrainConfig.from_dict({**base, "student_lora_lr": None}).semantic_hash() == plain  # older runs resume
    assert TrainConfig.from_dict({**base, "student_lora_lr": 3e-4}).semantic_hash() != plain


def test_the_lora_student_optimiser_uses_its_lr(tiny_pipeline_dir, tmp_path):
    p, _, _ = setup(make_config(tiny_pipeline_dir, tmp_path, scheme="lora", student_lora_lr=2e-4), tmp_path)
    assert [g["lr"] for g in p.opt_student.param_groups] == [2e-4]


def test_toy_defaults_use_one_vsd_form():
    """SwiftBrush v1's form (docs/recipe.md): CFG on both teachers at the same scale, abar-weighted LoRA loss;
    TOY_OVERRIDES and config/default.yaml agree on the recipe keys."""
    from pathlib import Path

    import yaml

    from sb2bench.train import TOY_OVERRIDES

    root = Path(__file__).resolve().parents[2]
    defaults = yaml.safe_load((root / "config" / "default.yaml").read_text())["training"]["defaults"]
    base = {"teacher": "t", "student_init": "s", "prompts": "p"}
    for keys in (defaults, TOY_OVERRIDES):
        run_keys = {k: v for k, v in keys.items() if k in TrainConfig.__dataclass_fields__}
        cfg = TrainConfig.from_dict({**base, **run_keys})
        assert cfg.lora_cfg == cfg.teacher_cfg and cfg.lora_loss_weighting == "alpha_bar"
        assert cfg.diagnostics_every > 0
    for key in ("lora_cfg", "student_lora_lr", "lora_updates_per_step", "lora_warmup_steps", "student_lr",
                "ema_decay"):
        assert defaults[key] == TOY_OVERRIDES[key], key
