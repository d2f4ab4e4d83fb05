"""The fast VSD step (split teacher, fused AdamW) computes what the step it replaced computed: the shared
UNet with the adapter toggled and torch's per-tensor AdamW loop (docs/speed.md)."""
import pytest
import torch

from sb2bench.train.step import train_step
from sb2bench.train.trainer import _constant_with_warmup
from test_train_step import CAPTIONS, make_config, setup


def _trainable(module) -> dict[str, torch.Tensor]:
    return {n: q.detach().clone() for n, q in module.named_parameters() if q.requires_grad}


def _previous_optimisers(p) -> None:
    """The optimisers as built before the speed work: AdamW's per-tensor loop (neither foreach nor fused)."""
    cfg = p.cfg
    kw = dict(betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay, eps=cfg.adam_eps,
              foreach=False, fused=False)
    p.opt_student = torch.optim.AdamW(p.student_params, lr=cfg.student_lr, **kw)
    p.opt_lora = torch.optim.AdamW(p.teacher.lora_parameters(), lr=cfg.lora_lr, **kw)
    p.lr_student = _constant_with_warmup(p.opt_student, cfg.lr_warmup_steps)
    p.lr_lora = _constant_with_warmup(p.opt_lora, cfg.lr_warmup_steps, cfg.lora_updates_per_step)


def _train(tiny_pipeline_dir, tmp_path, steps: int, previous_optimisers: bool = False, **kw):
    cfg = make_config(tiny_pipeline_dir, tmp_path, lora_cfg=4.5, **kw)  # both CFG halves of both teachers
    p, cond, null = setup(cfg, tmp_path)
    if previous_optimisers:
        _previous_optimisers(p)
    logs = [train_step(p, step, cond, null, CAPTIONS) for step in range(steps)]
    return p, logs


@pytest.mark.parametrize("scheme", ["full", "lora"])
def test_fast_step_updates_student_and_lora_teacher_as_the_shared_unet_step(tiny_pipeline_dir, tmp_path, scheme,
                                                                            steps=3, tol=1e-2):
    """Compared as updates (weights after minus before), in norm. The layouts agree bit for bit (below); the
    rest is fused AdamW's rounding, which Adam amplifies: its first steps are ~lr * sign(grad), so an element
    whose gradient is ~0 flips its step on a last-bit difference (3 steps at lr 1e-3: <= 0.3 % of the update;
    the optimiser alone agrees to 1e-6, test_fused_adamw_matches_the_per_tensor_loop)."""
    start, _ = _train(tiny_pipeline_dir, tmp_path, 0, scheme=scheme)
    old, old_logs = _train(tiny_pipeline_dir, tmp_path, steps, previous_optimisers=True, scheme=scheme,
                           teacher_unet="shared")
    new, new_logs = _train(tiny_pipeline_dir, tmp_path, steps, scheme=scheme)
    assert type(new.teacher).__name__ == "SplitTeacher" and type(old.teacher).__name__ == "SharedTeacher"
    for name, get in (("student", lambda p: p.student), ("LoRA teacher", lambda p: p.teacher.unet)):
        w0, a, b = (_trainable(get(p)) for p in (start, old, new))
        assert a.keys() == b.keys() == w0.keys() and a
        d_old = torch.cat([(a[k] - w0[k]).flatten() for k in a])
        d_new = torch.cat([(b[k] - w0[k]).flatten() for k in a])
        assert d_old.norm() > 0, f"{name} did not move: the comparison would be vacuous"
        rel = ((d_new - d_old).norm() / d_old.norm()).item()
        print(f"{scheme} {name}: update norm {d_old.norm().item():.4g}, relative difference {rel:.3g}")
        assert rel < tol, f"{name}: the fast step's update differs by {rel:.3g} (relative) from the old step's"
    for o, n in zip(old_logs, new_logs):
        assert o.keys() == n.keys()
        for k in o:
            assert n[k] == pytest.approx(o[k], rel=tol, abs=1e-6), k


def test_split_and_shared_teacher_are_bit_identical_on_cpu(tiny_pipeline_dir, tmp_path):
    """Why ``teacher_unet`` is not a semantic key: a run may resume with the other layout."""
    a, la = _train(tiny_pipeline_dir, tmp_path, 2, teacher_unet="split")
    b, lb = _train(tiny_pipeline_dir, tmp_path, 2, teacher_unet="shared")
    assert la == lb
    for x, y in ((a.student, b.student), (a.teacher.unet, b.teacher.unet)):
        tx, ty = _trainable(x), _trainable(y)
        assert all(torch.equal(tx[k], ty[k]) for k in tx)


def test_split_teacher_keeps_a_plain_frozen_unet(tiny_pipeline_dir, tmp_path):
    p, _, _ = setup(make_config(tiny_pipeline_dir, tmp_path), tmp_path)
    frozen = p.teacher.frozen_unet
    assert not frozen.training and not any(q.requires_grad for q in frozen.parameters())
    assert not any("lora_" in n for n, _ in frozen.named_parameters())  # no peft wrappers on the frozen passes
    assert not any(q is f for q in p.teacher.unet.parameters() for f in frozen.parameters())  # shares nothing
    assert all(g["fused"] for opt in (p.opt_student, p.opt_lora) for g in opt.param_groups)


def test_teacher_unet_key_is_checked():
    from sb2bench.train import TrainConfig

    with pytest.raises(ValueError, match="teacher_unet.*split"):
        TrainConfig.from_dict({"teacher": "t", "student_init": "s", "prompts": "p", "teacher_unet": "double"})


def test_fused_adamw_matches_the_per_tensor_loop():
    from sb2bench.train import TrainConfig
    from sb2bench.train.trainer import adamw

    cfg = TrainConfig(teacher="t", student_init="s", prompts="p")
    gen = torch.Generator().manual_seed(0)
    shapes = [(64, 32), (32,), (8, 4, 3, 3)]
    ref = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    new = [torch.nn.Parameter(q.detach().clone()) for q in ref]
    kw = dict(betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay, eps=cfg.adam_eps)
    opts = torch.optim.AdamW(ref, lr=1e-3, foreach=False, fused=False, **kw), adamw(new, 1e-3, cfg)
    for _ in range(5):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for params, opt in zip((ref, new), opts):
            for q, g in zip(params, grads):
                q.grad = g.clone()
            opt.step()
    for a, b in zip(ref, new):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)
