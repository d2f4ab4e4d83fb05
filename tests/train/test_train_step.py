"""A real training step on the tiny conftest pipeline: what changes, what must not, the NaN guard."""
import pytest
import torch

from sb2bench.models import zoo
from sb2bench.data.prompts import write_prompts
from sb2bench.sample.generate import one_step_x0
from sb2bench.train import NonFiniteError, TrainConfig
from sb2bench.train.embeddings import prompt_embeddings
from sb2bench.train.step import train_step
from sb2bench.train.student import predict_x0
from sb2bench.train.trainer import _accelerator, build_parts

CAPTIONS = ["a red circle", "a blue square on a white background", "a green triangle", "a yellow circle"]


def make_config(tiny_pipeline_dir, tmp_path, **kw) -> TrainConfig:
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, [{"index": i, "caption": c} for i, c in enumerate(CAPTIONS)])
    base = {"teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir), "prompts": str(prompts),
            "batch_size": 2, "max_steps": 4, "student_lr": 1e-3, "lora_lr": 1e-2, "teacher_cfg": 4.5,
            "lora_cfg": 1.0, "lora_rank": 4, "lora_alpha": 8.0, "student_lora_rank": 4, "student_lora_alpha": 8.0,
            "adam_weight_decay": 0.0, "lora_updates_per_step": 2}
    return TrainConfig.from_dict({**base, **kw})


def setup(cfg, tmp_path):
    cond, null, _ = prompt_embeddings(cfg.teacher, CAPTIONS, tmp_path / "cache")
    parts = build_parts(cfg, _accelerator(cfg), cond[:1])
    return parts, cond, null


def base_weights(unet) -> dict[str, torch.Tensor]:
    """Non-LoRA weights under their original names (peft renames wrapped layers to *.base_layer.*)."""
    return {n.replace(".base_layer", ""): p.detach().clone() for n, p in unet.named_parameters() if "lora_" not in n}


@pytest.mark.parametrize("scheme", ["full", "lora"])
def test_step_moves_student_and_lora_but_not_the_frozen_teacher(tiny_pipeline_dir, tmp_path, scheme):
    cfg = make_config(tiny_pipeline_dir, tmp_path, scheme=scheme)
    p, cond, null = setup(cfg, tmp_path)
    original = zoo.load_unet(str(tiny_pipeline_dir)).state_dict()
    student0 = {n: q.detach().clone() for n, q in p.student.named_parameters() if q.requires_grad}
    lora0 = {n: q.detach().clone() for n, q in p.teacher.unet.named_parameters() if q.requires_grad}
    assert lora0 and all("lora_" in n for n in lora0)
    for step in range(2):
        logs = train_step(p, step, cond, null, CAPTIONS)
    assert logs["loss_vsd"] > 0 and logs["loss_lora"] > 0
    moved = [n for n, q in p.student.named_parameters() if q.requires_grad and not torch.equal(q, student0[n])]
    assert moved, "no student parameter changed"
    if scheme == "lora":
        assert all("lora_" in n for n in student0)
        assert base_weights(p.student).keys() == original.keys()
        assert all(torch.equal(v, original[k]) for k, v in base_weights(p.student).items())
    lora_moved = [n for n, q in p.teacher.unet.named_parameters() if q.requires_grad
                  and not torch.equal(q, lora0[n])]
    assert lora_moved, "no LoRA-teacher parameter changed"
    teacher_now = base_weights(p.teacher.unet)
    assert teacher_now.keys() == original.keys()
    assert all(torch.equal(v, original[k]) for k, v in teacher_now.items()), "frozen teacher weights changed"
    # with the adapter disabled the shared UNet is exactly the original teacher
    ref = zoo.load_unet(str(tiny_pipeline_dir)).eval()
    x, t, c = torch.randn(2, 4, 8, 8), torch.tensor([10, 500]), cond[:2]
    with torch.no_grad(), p.teacher.frozen():
        frozen = p.teacher.unet(x, t, c).sample
        lora_off_teacher = ref(x, t, c).sample
    assert torch.equal(frozen, lora_off_teacher)
    with torch.no_grad():
        assert not torch.allclose(p.teacher.unet(x, t, c).sample, lora_off_teacher)
    assert all(q.requires_grad for q in p.teacher.lora_parameters()) and p.teacher.lora_parameters()


def test_predict_x0_matches_sampling_one_step(tiny_pipeline_dir):
    unet = zoo.load_unet(str(tiny_pipeline_dir)).eval()
    sched = zoo.load_scheduler(str(tiny_pipeline_dir), "ddpm")
    z, cond = torch.randn(3, 4, 8, 8), torch.randn(3, 77, 32)
    with torch.no_grad():
        a = predict_x0(unet, sched.alphas_cumprod, z, cond, 999)
        b = one_step_x0(unet, sched, z, cond)
    assert torch.allclose(a, b, atol=1e-6)


def test_nan_guard_raises(tiny_pipeline_dir, tmp_path):
    cfg = make_config(tiny_pipeline_dir, tmp_path)
    p, cond, null = setup(cfg, tmp_path)
    bad = cond.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="non-finite student"):
        for step in range(4):  # prompt 0 is drawn within a few steps
            train_step(p, step, bad[:1].expand_as(cond).clone(), null, CAPTIONS)


def test_nan_guard_skip_counts_and_leaves_weights(tiny_pipeline_dir, tmp_path):
    cfg = make_config(tiny_pipeline_dir, tmp_path, nonfinite="skip", max_nonfinite_skips=1)
    p, cond, null = setup(cfg, tmp_path)
    student0 = {n: q.detach().clone() for n, q in p.student.named_parameters()}
    bad = torch.full_like(cond, float("nan"))
    logs = train_step(p, 0, bad, null, CAPTIONS)
    assert logs["nonfinite_skips"] == 1 and "loss_lora" not in logs
    assert all(torch.equal(q, student0[n]) for n, q in p.student.named_parameters())
    with pytest.raises(NonFiniteError, match="max_nonfinite_skips=1"):
        train_step(p, 1, bad, null, CAPTIONS)


def test_text_embedding_cache_is_keyed_by_content(tiny_pipeline_dir, tmp_path):
    c1, n1, f1 = prompt_embeddings(str(tiny_pipeline_dir), CAPTIONS, tmp_path)
    mtime = f1.stat().st_mtime_ns
    c2, n2, f2 = prompt_embeddings(str(tiny_pipeline_dir), CAPTIONS, tmp_path)
    assert f1 == f2 and f2.stat().st_mtime_ns == mtime and torch.equal(c1, c2) and torch.equal(n1, n2)
    c3, _, f3 = prompt_embeddings(str(tiny_pipeline_dir), CAPTIONS[:3], tmp_path)
    assert f3 != f1 and c3.shape[0] == 3 and torch.allclose(c3, c1[:3], atol=1e-6)
    length = zoo.load_tokenizer(str(tiny_pipeline_dir)).model_max_length
    assert c1.shape == (4, length, 32) and n1.shape == (1, length, 32)


def test_lora_warmup_moves_only_the_lora_teacher(tiny_pipeline_dir, tmp_path):
    """lora_warmup_steps: LoRA-teacher turns on the initial student's samples; the student stays put."""
    from sb2bench.train.step import lora_warmup_step

    assert TrainConfig.lora_warmup_steps == 0  # the paper's behaviour is the default
    with pytest.raises(ValueError, match="lora_warmup_steps"):
        make_config(tiny_pipeline_dir, tmp_path, lora_warmup_steps=-1)
    cfg = make_config(tiny_pipeline_dir, tmp_path, lora_warmup_steps=2)
    p, cond, null = setup(cfg, tmp_path)
    student0 = {n: q.detach().clone() for n, q in p.student.state_dict().items()}
    lora0 = {n: q.detach().clone() for n, q in p.teacher.unet.named_parameters() if q.requires_grad}
    gen0 = p.gen.get_state().clone()
    logs = lora_warmup_step(p, 0, cond, null)
    assert logs["loss_lora"] > 0
    assert all(torch.equal(q, student0[n]) for n, q in p.student.state_dict().items()), "warm-up moved the student"
    assert any(not torch.equal(q, lora0[n]) for n, q in p.teacher.unet.named_parameters() if q.requires_grad)
    assert not torch.equal(p.gen.get_state(), gen0)  # its draws come from the run's generator (resumable)


def _trainable(p) -> dict[str, torch.Tensor]:
    return {n: q.detach().clone() for n, q in p.student.named_parameters() if q.requires_grad}


def test_hps_loss_is_minus_weighted_mean_hps_and_reaches_the_student(tiny_pipeline_dir, tmp_path):
    import torch.nn.functional as F

    from sb2bench.evaluate.metrics.hps import hps_preprocess
    from sb2bench.train.clip_guidance import decode01
    from sb2bench.train.step import _add_image_losses

    cfg = make_config(tiny_pipeline_dir, tmp_path, hps_loss_weight=0.5, hps_model="toy:clip-toy")
    p, cond, null = setup(cfg, tmp_path)
    assert p.clip is None and p.hps is not None
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    x0 = predict_x0(p.student, p.acp, z, cond[:2], p.student_t)
    logs = {}
    total = _add_image_losses(p, 0, x0, CAPTIONS[:2], torch.zeros(()), logs)
    with torch.no_grad():  # by hand: HPS = 100 cos(image, text) of the frozen scorer on D(x0)
        img = hps_preprocess(decode01(p.decoder, x0), 32)
        a = p.hps.model.encode_image(img)
        b = p.hps.model.encode_text(p.hps.tokenizer(CAPTIONS[:2]))
        hps = 100 * F.cosine_similarity(a, b)
    assert total.item() == pytest.approx(-0.5 * hps.mean().item() / 100, rel=1e-5, abs=1e-7)
    assert logs["hps"] == pytest.approx(hps.mean().item(), rel=1e-5) and logs["hps_weight"] == 0.5
    total.backward()
    grads = [q.grad for q in p.student.parameters() if q.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "no HPS gradient reached the student"
    assert all(q.grad is None for q in p.hps.model.parameters()), "the HPS model must stay frozen"
    logs = train_step(p, 0, cond, null, CAPTIONS)
    assert {"loss_hps", "hps", "hps_weight"} <= logs.keys() and "loss_clip" not in logs


def test_zero_weights_leave_the_step_bit_identical(tiny_pipeline_dir, tmp_path):
    """Flags present but weights 0: same draws, same losses, same weights as a config without them."""
    runs = []
    for extra in ({}, {"hps_loss_weight": 0.0, "hps_model": "toy:clip-toy", "reg_weight": 0.0,
                       "reg_pairs": str(tmp_path / "no-pairs-needed")}):
        cfg = make_config(tiny_pipeline_dir, tmp_path, clip_loss="clamped", clip_model="toy:clip-toy", **extra)
        p, cond, null = setup(cfg, tmp_path)
        assert p.hps is None and p.reg is None
        logs = [train_step(p, step, cond, null, CAPTIONS) for step in range(2)]
        runs.append((logs, _trainable(p), p.gen.get_state()))
    (logs_a, w_a, g_a), (logs_b, w_b, g_b) = runs
    assert logs_a == logs_b and torch.equal(g_a, g_b)
    assert w_a.keys() == w_b.keys() and all(torch.equal(w_a[k], w_b[k]) for k in w_a)
