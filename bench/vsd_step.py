"""VSD training step rate and peak memory: our ``sb2bench.train`` step against a plain SwiftBrush v1 loop.

ours-full / ours-lora: ``sb2bench.train.step.train_step`` itself (student turn + LoRA-teacher turn), with
the frozen teacher and the LoRA teacher sharing one UNet (adapter off / on), bf16 autocast on a GPU
(the trainer's default), full student (Model A) or LoRA student (Model B, no CLIP term).
sbv1-plain: the same maths written the way SwiftBrush v1's loop is laid out -- three UNets (student,
frozen teacher, a separate teacher copy carrying the LoRA), fp32, no autocast.
Each variant runs in its own process so its peak memory is its own (CUDA: max allocated; CPU: peak RSS,
which includes the ~0.3-0.5 GB of Python + torch, reported separately). Random SD 2.1-base weights
(``--size sd21``) or the toy-width layout (``--size toy``). Writes reports/bench/vsd_step.{json,md}.

    python bench/vsd_step.py --size toy
    python bench/vsd_step.py --size sd21 --batch 4
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import time

import _arch
import torch

VARIANTS = ("ours-full", "ours-lora", "sbv1-plain")
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _embeddings(size: str, n: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached-text-embedding stand-ins (the trainer reads precomputed embeddings, no text encoder in the loop)."""
    dim = _arch.SIZES[size]["unet"]["cross_attention_dim"]
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 77, dim, generator=g), torch.randn(1, 77, dim, generator=g)


def ours(size: str, scheme: str, batch: int, device: str):
    """Parts for sb2bench.train.step.train_step, built from inline configs instead of a model folder."""
    from accelerate import Accelerator

    from sb2bench.train import lora
    from sb2bench.train.config import TrainConfig
    from sb2bench.train.step import Parts, train_step
    from sb2bench.train.teacher import SharedTeacher

    r = _arch.SIZES[size]["lora"]
    cfg = TrainConfig(teacher="bench", student_init="bench", prompts="bench", scheme=scheme, batch_size=batch,
                      lora_rank=r["teacher_rank"], lora_alpha=r["teacher_alpha"], student_lora_rank=r["student_rank"],
                      student_lora_alpha=r["student_alpha"], max_steps=10**6)
    acc = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if device == "cuda" else "no")
    student = _arch.build_unet(size, seed=1)
    if scheme == "full":
        student.requires_grad_(True)
    else:
        lora.add_lora(student, lora.STUDENT_ADAPTER, cfg.student_lora_rank, cfg.student_lora_alpha, TARGETS)
    student.train().to(acc.device)
    teacher = SharedTeacher.__new__(SharedTeacher)  # SharedTeacher.__init__ minus loading from a folder
    teacher.unet = _arch.build_unet(size, seed=0)
    lora.add_lora(teacher.unet, lora.TEACHER_ADAPTER, cfg.lora_rank, cfg.lora_alpha, cfg.lora_targets)
    teacher.unet.train().to(acc.device)
    sched = _arch.build_scheduler()
    adam = dict(betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay, eps=cfg.adam_eps)
    opt_s = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=cfg.student_lr, **adam)
    opt_l = torch.optim.AdamW(teacher.lora_parameters(), lr=cfg.lora_lr, **adam)
    const = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)  # noqa: E731
    p = Parts(cfg=cfg, student=student, teacher=teacher, scheduler=sched, acp=sched.alphas_cumprod.to(acc.device),
              student_t=sched.config.num_train_timesteps - 1, opt_student=opt_s, opt_lora=opt_l,
              lr_student=const(opt_s), lr_lora=const(opt_l), accelerator=acc, gen=torch.Generator().manual_seed(0),
              device=acc.device)
    cond_all, null = _embeddings(size, 64, device)
    captions = [""] * len(cond_all)
    return lambda step: train_step(p, step, cond_all, null, captions)


def sbv1_plain(size: str, batch: int, device: str):
    """Three fp32 UNets and two AdamW optimisers, laid out like SwiftBrush v1's training loop."""
    from peft import LoraConfig

    r = _arch.SIZES[size]["lora"]
    student = _arch.build_unet(size, seed=1).train().to(device)
    teacher = _arch.build_unet(size, seed=0).eval().requires_grad_(False).to(device)
    lora_teacher = copy.deepcopy(teacher)
    lora_teacher.add_adapter(LoraConfig(r=r["teacher_rank"], lora_alpha=r["teacher_alpha"], target_modules=TARGETS))
    lora_teacher.train()
    acp = _arch.build_scheduler().alphas_cumprod.to(device)
    opt_s = torch.optim.AdamW(student.parameters(), lr=1e-6)
    opt_l = torch.optim.AdamW([q for q in lora_teacher.parameters() if q.requires_grad], lr=1e-3)
    cond_all, null = _embeddings(size, 64, device)
    g = torch.Generator().manual_seed(0)
    c = student.config
    shape = (batch, c.in_channels, c.sample_size, c.sample_size)

    def add_noise(x0, noise, t):
        a = acp[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def cfg_eps(unet, x, t, cond, scale=4.5):
        eps_u, eps_c = unet(torch.cat([x, x]), torch.cat([t, t]), torch.cat([null.expand_as(cond), cond])).sample.chunk(2)
        return eps_u + scale * (eps_c - eps_u)

    def step(_: int) -> None:
        cond = cond_all[torch.randint(0, len(cond_all), (batch,), generator=g)].to(device)
        z = torch.randn(shape, generator=g).to(device)
        t_s = torch.full((batch,), 999, device=device, dtype=torch.long)
        abar = acp[999]
        x0 = (z - (1 - abar).sqrt() * student(z, t_s, cond).sample) / abar.sqrt()
        t = torch.randint(20, 981, (batch,), generator=g).to(device)
        x_t = add_noise(x0.detach(), torch.randn(shape, generator=g).to(device), t)
        with torch.no_grad():
            grad = (1 - acp[t]).view(-1, 1, 1, 1) * (cfg_eps(teacher, x_t, t, cond) - cfg_eps(lora_teacher, x_t, t, cond))
        loss = 0.5 * torch.nn.functional.mse_loss(x0, (x0 - grad).detach(), reduction="sum") / batch
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt_s.step()
        t2 = torch.randint(0, 1000, (batch,), generator=g).to(device)
        noise = torch.randn(shape, generator=g).to(device)
        drop = (torch.rand(batch, generator=g) < 0.1).to(device).view(-1, 1, 1)
        pred = lora_teacher(add_noise(x0.detach(), noise, t2), t2, torch.where(drop, null.to(device), cond)).sample
        loss_l = torch.nn.functional.mse_loss(pred, noise)
        opt_l.zero_grad(set_to_none=True)
        loss_l.backward()
        torch.nn.utils.clip_grad_norm_([q for q in lora_teacher.parameters() if q.requires_grad], 1.0)
        opt_l.step()

    null = null.to(device)
    return step


def child(a: argparse.Namespace) -> None:
    """One variant in this process: print its JSON record on the last line."""
    torch.set_num_threads(a.threads)
    device = _arch.resolve_device(a.device)
    base_rss = _rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step = sbv1_plain(a.size, a.batch, device) if a.variant == "sbv1-plain" else \
        ours(a.size, a.variant.split("-")[1], a.batch, device)
    for i in range(a.warmup):
        step(i)
    _arch.sync(device)
    t0 = time.perf_counter()
    for i in range(a.steps):
        step(a.warmup + i)
    _arch.sync(device)
    s = time.perf_counter() - t0
    rec = {"variant": a.variant, "batch": a.batch, "steps": a.steps, "seconds": round(s, 3),
           "steps_per_second": round(a.steps / s, 4), "images_per_second": round(a.steps * a.batch / s, 3)}
    if device == "cuda":
        rec["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    rec["peak_rss_mib"], rec["baseline_rss_mib"] = round(_rss_mb()), round(base_rss)
    print(json.dumps(rec))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["toy", "sd21"], default="toy")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=None, help="per step (default: toy 4, sd21 4; SBv2 used 16/GPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default: toy 5, sd21 20)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=str(_arch.ROOT / "reports" / "bench"))
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: run one variant
    a = ap.parse_args()
    a.batch = a.batch or 4
    a.steps = a.steps or (5 if a.size == "toy" else 20)
    if a.variant:
        return child(a)
    torch.set_num_threads(a.threads)  # recorded in the machine block; each child sets its own
    device = _arch.resolve_device(a.device)
    rows = []
    for v in a.variants:
        cmd = [sys.executable, __file__, "--variant", v, "--size", a.size, "--device", device, "--batch", str(a.batch),
               "--steps", str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"variant {v} failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    plain = next((r for r in rows if r["variant"] == "sbv1-plain"), None)
    for r in rows:
        r["speedup_vs_sbv1_plain"] = round(r["steps_per_second"] / plain["steps_per_second"], 2) if plain else None
    cuda = device == "cuda"
    prec = {"ours-full": "bf16 autocast" if cuda else "fp32", "ours-lora": "bf16 autocast" if cuda else "fp32",
            "sbv1-plain": "fp32"}
    table = ["| variant | precision | batch | steps / s | images / s | peak memory | × SBv1 plain |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        mem = f"{r['peak_gpu_memory_gib']} GiB (GPU)" if cuda else \
            f"{r['peak_rss_mib'] - r['baseline_rss_mib']} MiB (RSS above {r['baseline_rss_mib']} MiB)"
        table.append(f"| {r['variant']} | {prec[r['variant']]} | {r['batch']} | {r['steps_per_second']:.3f} | "
                     f"{r['images_per_second']:.2f} | {mem} | {r['speedup_vs_sbv1_plain']} |")
    record = {"machine": _arch.machine(device), "size": a.size, "architecture": _arch.SIZES[a.size], "rows": rows,
              "warmup_steps": a.warmup, "precision": prec}
    notes = ["A step = student update (teacher and LoRA-teacher eps at cfg 4.5, one batched CFG pass each) + one "
             "LoRA-teacher denoising update; text embeddings precomputed, as in training.",
             "ours-*: sb2bench.train.step.train_step (shared UNet, adapter off = frozen teacher, on = LoRA "
             "teacher). sbv1-plain: separate teacher and LoRA-teacher UNets, fp32."]
    _arch.write_report("vsd_step", "VSD training step", record, table, notes, a.out_dir)


if __name__ == "__main__":
    main()
