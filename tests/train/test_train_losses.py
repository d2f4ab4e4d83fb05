"""Loss formulas, clamp, schedules and config validation of sb2bench.train, on tiny tensors."""
import math

import pytest
import torch

from sb2bench.train import losses
from sb2bench.train.config import TrainConfig

REQUIRED = {"teacher": "toy:sd-toy", "student_init": "toy:sd-toy-turbo", "prompts": "p.jsonl"}


def test_vsd_weight_is_one_minus_alpha_bar_per_sample():
    acp = torch.tensor([0.9, 0.5, 0.2, 0.1])
    w = losses.vsd_weight(acp, torch.tensor([1, 3]), "one_minus_alpha_bar")
    assert w.shape == (2, 1, 1, 1)
    assert torch.allclose(w.flatten(), torch.tensor([0.5, 0.9]))
    assert torch.equal(losses.vsd_weight(acp, torch.tensor([1, 3]), "constant").flatten(), torch.ones(2))


def test_vsd_grad_by_hand_and_nan_to_num():
    et = torch.tensor([[[[1.0, 2.0]]], [[[0.0, float("nan")]]]])
    el = torch.tensor([[[[0.5, 0.0]]], [[[1.0, 1.0]]]])
    w = torch.tensor([0.5, 2.0]).view(-1, 1, 1, 1)
    g = losses.vsd_grad(et, el, w)
    assert torch.equal(g, torch.tensor([[[[0.25, 1.0]]], [[[-2.0, 0.0]]]]))


def test_vsd_loss_value_and_gradient_by_hand():
    x0 = torch.tensor([1.0, -2.0, 0.5, 3.0], requires_grad=True)
    grad = torch.tensor([0.2, -0.4, 1.0, 0.0])
    loss = losses.vsd_loss(x0, grad)
    # target = x0 - grad, so (x0 - target)^2 = grad^2: 0.5 * mean(grad^2)
    assert loss.item() == pytest.approx(0.5 * (0.04 + 0.16 + 1.0 + 0.0) / 4)
    loss.backward()
    assert torch.allclose(x0.grad, grad / 4)  # d/dx0 = grad / numel: the VSD gradient, scaled


def test_lora_denoise_loss_weighting():
    pred = torch.tensor([[[[1.0]]], [[[3.0]]]])
    eps = torch.zeros_like(pred)
    assert losses.lora_denoise_loss(pred, eps, None).item() == pytest.approx((1 + 9) / 2)
    assert losses.lora_denoise_loss(pred, eps, torch.tensor([0.5, 0.1])).item() == pytest.approx((0.5 + 0.9) / 2)


def test_clamped_clip_loss_values_and_zero_gradient_above_tau():
    cos = torch.tensor([0.1, 0.3, 0.5, 0.9], requires_grad=True)
    loss = losses.clip_loss(cos, "clamped", 0.35)
    assert loss.item() == pytest.approx((0.25 + 0.05 + 0 + 0) / 4)
    loss.backward()
    assert torch.allclose(cos.grad, torch.tensor([-0.25, -0.25, 0.0, 0.0]))


def test_unclamped_clip_loss_pushes_every_sample():
    cos = torch.tensor([0.1, 0.9], requires_grad=True)
    loss = losses.clip_loss(cos, "unclamped", 0.35)
    assert loss.item() == pytest.approx(((1 - 0.1) + (1 - 0.9)) / 2)
    loss.backward()
    assert torch.allclose(cos.grad, torch.tensor([-0.5, -0.5]))
    with pytest.raises(ValueError, match="clamped"):
        losses.clip_loss(cos, "none", 0.35)


@pytest.mark.parametrize("schedule, step, expected", [
    ("constant", 0, 0.1), ("constant", 70, 0.1),
    ("linear", 0, 0.1), ("linear", 25, 0.075), ("linear", 100, 0.0), ("linear", 150, 0.0),
    ("cosine", 0, 0.1), ("cosine", 50, 0.05), ("cosine", 25, 0.05 * (1 + math.cos(math.pi / 4))),
    ("cosine", 100, 0.0),
])
def test_schedule_weights(schedule, step, expected):
    assert losses.schedule_weight(step, 100, 0.1, schedule) == pytest.approx(expected, abs=1e-12)


def test_schedule_rejects_unknown_name():
    with pytest.raises(ValueError, match="constant, linear or cosine"):
        losses.schedule_weight(0, 10, 0.1, "exp")


def test_config_defaults_are_the_paper_values():
    cfg = TrainConfig.from_dict(REQUIRED)
    assert (cfg.student_lr, cfg.lora_lr, cfg.teacher_cfg) == (1e-6, 1e-3, 4.5)
    assert (cfg.lora_rank, cfg.lora_alpha, cfg.student_lora_rank, cfg.student_lora_alpha) == (64, 128, 256, 512)
    assert (cfg.t_min, cfg.t_max, cfg.clip_tau, cfg.clip_weight, cfg.max_grad_norm) == (20, 980, 0.35, 0.1, 1.0)
    assert cfg.lora_null_prompt_prob == 0.1 and cfg.weighting == "one_minus_alpha_bar"


@pytest.mark.parametrize("bad, match", [
    ({"lr": 1e-5}, "unknown key.*'lr'"),
    ({"student_lr": "fast"}, "'student_lr': expected float"),
    ({"max_steps": 1.5}, "'max_steps': expected int"),
    ({"max_steps": True}, "'max_steps': expected int"),
    ({"scheme": "qlora"}, "'scheme'.*choose one of"),
    ({"clip_loss": "clamped"}, "'clip_model'.*required"),
    ({"t_min": 500, "t_max": 100}, "t_min/t_max"),
    ({"teacher": ""}, "'teacher'.*required"),
    ({"lora_targets": []}, "'lora_targets'"),
])
def test_config_errors_name_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**REQUIRED, **bad})


def test_semantic_hash_ignores_bookkeeping_keys_only():
    a = TrainConfig.from_dict(REQUIRED)
    assert a.semantic_hash() == TrainConfig.from_dict({**REQUIRED, "log_every": 3, "threads": 1}).semantic_hash()
    assert a.semantic_hash() != TrainConfig.from_dict({**REQUIRED, "student_lr": 2e-6}).semantic_hash()


def test_hps_loss_is_minus_mean_score_over_hundred():
    scores = torch.tensor([20.0, 30.0, 25.0], requires_grad=True)  # hpsv2's x100 scale
    loss = losses.hps_loss(scores)
    assert loss.item() == pytest.approx(-(20 + 30 + 25) / 3 / 100)
    loss.backward()
    assert torch.allclose(scores.grad, torch.full((3,), -1 / 300))


def test_reg_loss_is_mse_and_does_not_push_the_target():
    pred = torch.tensor([[1.0, 2.0], [0.0, -1.0]], requires_grad=True)
    target = torch.tensor([[0.0, 2.0], [1.0, 1.0]], requires_grad=True)
    loss = losses.reg_loss(pred, target)
    assert loss.item() == pytest.approx((1 + 0 + 1 + 4) / 4)
    loss.backward()
    assert torch.allclose(pred.grad, 2 * (pred - target).detach() / 4) and target.grad is None


@pytest.mark.parametrize("bad, match", [
    ({"hps_loss_weight": 0.1}, "'hps_model'.*required.*hps_loss_weight"),
    ({"hps_loss_weight": -1.0, "hps_model": "toy:clip-toy"}, "'hps_loss_weight'.*>= 0"),
    ({"hps_version": "v3"}, "'hps_version'.*choose one of"),
    ({"hps_schedule": "exp"}, "'hps_schedule'.*choose one of"),
    ({"reg_weight": 0.25}, "'reg_pairs'.*required.*train-reg-pairs"),
    ({"reg_weight": -0.1, "reg_pairs": "pairs"}, "'reg_weight'.*>= 0"),
    ({"reg_loss": "lpips"}, "'reg_loss'.*choose one of"),
    ({"reg_batch_size": 0}, "'reg_batch_size'.*>= 1"),
    ({"hps_model": 3}, "'hps_model': expected str"),
])
def test_optional_loss_config_errors_name_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**REQUIRED, **bad})


def test_optional_losses_are_off_by_default_and_leave_the_hash_alone():
    cfg = TrainConfig.from_dict(REQUIRED)
    assert cfg.hps_loss_weight == 0 and cfg.reg_weight == 0 and cfg.hps_model is None and cfg.reg_pairs is None
    # the hash of a config without the new keys is the one it had before they existed (resumable runs)
    assert cfg.semantic_hash() == "628891dee8a41328"
    on = TrainConfig.from_dict({**REQUIRED, "hps_loss_weight": 0.5, "hps_model": "toy:clip-toy"})
    assert on.semantic_hash() != cfg.semantic_hash()
