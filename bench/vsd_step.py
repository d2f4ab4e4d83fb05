"""VSD training step rate, peak memory and where the time goes: our ``sb2bench.train`` step against plain
SwiftBrush v1 loops, at the same batch.

ours-full / ours-lora: ``sb2bench.train.step.train_step`` itself (student turn + LoRA-teacher turn) as the
trainer builds it: split teacher (a plain frozen UNet next to the LoRA-teacher UNet), fused AdamW, bf16
autocast on a GPU; full student (Model A) or LoRA student (Model B, no CLIP term).
ours-full-shared: the same with ``teacher_unet: shared`` (one UNet, adapter toggled: one UNet less memory).
sbv1-plain: the maths written plainly -- three fp32 UNets (student, frozen teacher, a teacher copy carrying
the LoRA), both CFG halves in one batched call, torch's default AdamW.
sbv1-code: the layout of the SwiftBrush v1 training script (VinAIResearch/SwiftBrush train_swiftbrush.py):
one UNet whose adapter is disabled for the teacher, four separate (unbatched) cond / uncond passes, fp32.

Variants run in fresh processes (peak memory is then each one's own: CUDA max allocated; CPU peak RSS above
the ~0.2-0.5 GB of Python + torch), interleaved A B C A B C ... over ``--repeats`` so that other load on a
shared machine hits every variant alike; the tables give medians. CPU seconds per step (process time, one
thread) are reported beside wall time: they are what contention distorts least. ``--profile`` adds a
breakdown of each variant's step into phases (exclusive CPU time, median over the timed steps).
Random SD 2.1-base weights (``--size sd21``) or the toy-width layout (``--size toy``); MFU on a GPU from the
measured FLOPs per image-step in ../shared/reference/flops.md. Writes reports/bench/vsd_step.{json,md}.

    python bench/vsd_step.py --size toy --repeats 3 --profile
    python bench/vsd_step.py --size sd21 --batch 16
"""
from __future__ import annotations

import argparse
import copy
import json
import resource
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from contextlib import contextmanager

import _arch
import torch

VARIANTS = ("ours-full", "ours-lora", "ours-full-shared", "sbv1-plain", "sbv1-code")
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
# FLOPs per image-step (flops.md §3, measured): scheme A = student fwd+bwd 2408.7 + 2 x 804.3 + 2 x 813.4 +
# LoRA-teacher fwd+bwd 1726.5 GF; scheme B without the CLIP term = the same with the LoRA student's 1928.5.
TFLOP_PER_IMAGE = {"full": 7.371, "lora": 7.371 - 2.4087 + 1.9285}
PEAK_TFLOPS_BF16 = {"H200": 790.0, "H100": 989.0, "A100": 312.0}  # flops.md (H200 measured, A100 spec), H100 spec


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class Phases:
    """Exclusive process time per label: a label's clock stops while a nested label runs."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []
        self.mark = time.process_time()

    def _switch(self) -> None:
        now = time.process_time()
        if self.stack:
            self.seconds[self.stack[-1]] += now - self.mark
        self.mark = now

    @contextmanager
    def __call__(self, label: str):
        self._switch()
        self.stack.append(label)
        try:
            yield
        finally:
            self._switch()
            self.stack.pop()

    def wrap(self, fn, label):
        """``fn`` timed under ``label`` (a string, or a function of the enclosing label giving one or None)."""
        def timed(*args, **kwargs):
            name = label(self.stack[-1] if self.stack else "") if callable(label) else label
            if name is None:
                return fn(*args, **kwargs)
            with self(name):
                return fn(*args, **kwargs)
        return timed


def _embeddings(size: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cached-text-embedding stand-ins (the trainer reads precomputed embeddings, no text encoder in the loop)."""
    dim = _arch.SIZES[size]["unet"]["cross_attention_dim"]
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 77, dim, generator=g), torch.randn(1, 77, dim, generator=g)


def ours(size: str, scheme: str, batch: int, device: str, teacher_unet: str, ph: Phases | None):
    """sb2bench.train.step.train_step on parts built as trainer.build_parts builds them (inline configs)."""
    from accelerate import Accelerator

    from sb2bench.train import lora
    from sb2bench.train import step as step_mod
    from sb2bench.train import teacher as teacher_mod
    from sb2bench.train.config import TrainConfig
    from sb2bench.train.step import Parts, train_step
    from sb2bench.train.trainer import adamw

    r = _arch.SIZES[size]["lora"]
    cfg = TrainConfig(teacher="bench", student_init="bench", prompts="bench", scheme=scheme, batch_size=batch,
                      lora_rank=r["teacher_rank"], lora_alpha=r["teacher_alpha"], student_lora_rank=r["student_rank"],
                      student_lora_alpha=r["student_alpha"], max_steps=10**6, teacher_unet=teacher_unet)
    acc = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if device == "cuda" else "no")
    student = _arch.build_unet(size, seed=1)
    if scheme == "full":
        student.requires_grad_(True)
    else:
        lora.add_lora(student, lora.STUDENT_ADAPTER, cfg.student_lora_rank, cfg.student_lora_alpha, TARGETS)
    student.train().to(acc.device)
    teacher = teacher_mod.build_teacher(cfg, _arch.build_unet(size, seed=0)).to(acc.device)
    sched = _arch.build_scheduler()
    student_params = [q for q in student.parameters() if q.requires_grad]
    opt_s, opt_l = adamw(student_params, cfg.student_lr, cfg), adamw(teacher.lora_parameters(), cfg.lora_lr, cfg)
    const = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)  # noqa: E731
    p = Parts(cfg=cfg, student=student, teacher=teacher, scheduler=sched, acp=sched.alphas_cumprod.to(acc.device),
              student_t=sched.config.num_train_timesteps - 1, opt_student=opt_s, opt_lora=opt_l,
              lr_student=const(opt_s), lr_lora=const(opt_l), accelerator=acc, gen=torch.Generator().manual_seed(0),
              device=acc.device, student_params=student_params)
    if ph is not None:  # instrument the real code paths in place
        step_mod.predict_x0 = ph.wrap(step_mod.predict_x0, "student forward")
        calls = [0]

        def cfg_label(_):
            calls[0] += 1
            return "teacher CFG pass (2B)" if calls[0] % 2 else "LoRA-teacher CFG pass (2B)"
        teacher_mod.cfg_eps = ph.wrap(teacher_mod.cfg_eps, cfg_label)
        for name in ("disable_adapters", "enable_adapters"):
            setattr(teacher.unet, name, ph.wrap(getattr(teacher.unet, name), "adapter switching"))
        step_mod.lora_turn = ph.wrap(step_mod.lora_turn, "LoRA turn: rest")
        teacher.unet.forward = ph.wrap(teacher.unet.forward,
                                       lambda top: "LoRA forward (B)" if top == "LoRA turn: rest" else None)
        acc.backward = ph.wrap(acc.backward, lambda top: "LoRA backward" if top == "LoRA turn: rest"
                               else "student backward")
        acc.clip_grad_norm_ = ph.wrap(acc.clip_grad_norm_, "gradient clipping")
        opt_s.step = ph.wrap(opt_s.step, "student AdamW")
        opt_l.step = ph.wrap(opt_l.step, "LoRA AdamW")
    cond_all, null = _embeddings(size, 64)
    captions = [""] * len(cond_all)
    return lambda i: train_step(p, i, cond_all, null, captions)


def sbv1(size: str, batch: int, device: str, layout: str, ph: Phases | None):
    """SwiftBrush v1's loop in fp32: ``plain`` = separate teacher / LoRA-teacher UNets and batched CFG;
    ``code`` = its script's layout (one UNet, adapter off for the teacher, 4 unbatched CFG passes)."""
    from peft import LoraConfig

    ph = ph or Phases()
    r = _arch.SIZES[size]["lora"]
    student = _arch.build_unet(size, seed=1).train().to(device)
    teacher = _arch.build_unet(size, seed=0).to(device)
    if layout == "plain":
        teacher.eval().requires_grad_(False)
        lora_teacher = copy.deepcopy(teacher)
    else:
        lora_teacher = teacher.requires_grad_(False)
    lora_teacher.add_adapter(LoraConfig(r=r["teacher_rank"], lora_alpha=r["teacher_alpha"], target_modules=TARGETS))
    lora_teacher.train()
    acp = _arch.build_scheduler().alphas_cumprod.to(device)
    lora_params = [q for q in lora_teacher.parameters() if q.requires_grad]
    opt_s = torch.optim.AdamW(student.parameters(), lr=1e-6)
    opt_l = torch.optim.AdamW(lora_params, lr=1e-3)
    cond_all, null = _embeddings(size, 64)
    null = null.to(device)
    g = torch.Generator().manual_seed(0)
    c = student.config
    shape = (batch, c.in_channels, c.sample_size, c.sample_size)

    def add_noise(x0, noise, t):
        a = acp[t].view(-1, 1, 1, 1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def cfg_eps(unet, x, t, cond, scale=4.5):
        if layout == "plain":
            eps_u, eps_c = unet(torch.cat([x, x]), torch.cat([t, t]),
                                torch.cat([null.expand_as(cond), cond])).sample.chunk(2)
        else:
            eps_c, eps_u = unet(x, t, cond).sample, unet(x, t, null.expand_as(cond)).sample
        return eps_u + scale * (eps_c - eps_u)

    def step(_: int) -> None:
        cond = cond_all[torch.randint(0, len(cond_all), (batch,), generator=g)].to(device)
        z = torch.randn(shape, generator=g).to(device)
        t_s = torch.full((batch,), 999, device=device, dtype=torch.long)
        abar = acp[999]
        with ph("student forward"):
            x0 = (z - (1 - abar).sqrt() * student(z, t_s, cond).sample) / abar.sqrt()
        t = torch.randint(20, 981, (batch,), generator=g).to(device)
        x_t = add_noise(x0.detach(), torch.randn(shape, generator=g).to(device), t)
        with torch.no_grad():
            if layout == "plain":
                with ph("teacher CFG pass (2B)"):
                    eps_teacher = cfg_eps(teacher, x_t, t, cond)
            else:
                with ph("adapter switching"):
                    lora_teacher.disable_adapters()
                with ph("teacher CFG pass (2B)"):
                    eps_teacher = cfg_eps(teacher, x_t, t, cond)
                with ph("adapter switching"):
                    lora_teacher.enable_adapters()
            with ph("LoRA-teacher CFG pass (2B)"):
                eps_lora = cfg_eps(lora_teacher, x_t, t, cond)
            grad = torch.nan_to_num((1 - acp[t]).view(-1, 1, 1, 1) * (eps_teacher - eps_lora))
        loss = 0.5 * torch.nn.functional.mse_loss(x0, (x0 - grad).detach(), reduction="mean")
        opt_s.zero_grad(set_to_none=True)
        with ph("student backward"):
            loss.backward()
        with ph("gradient clipping"):
            torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        with ph("student AdamW"):
            opt_s.step()
        t2 = torch.randint(0, 1000, (batch,), generator=g).to(device)
        noise = torch.randn(shape, generator=g).to(device)
        drop = (torch.rand(batch, generator=g) < 0.1).to(device).view(-1, 1, 1)
        with ph("LoRA forward (B)"):
            pred = lora_teacher(add_noise(x0.detach(), noise, t2), t2, torch.where(drop, null, cond)).sample
        loss_l = torch.nn.functional.mse_loss(pred, noise)
        opt_l.zero_grad(set_to_none=True)
        with ph("LoRA backward"):
            loss_l.backward()
        with ph("gradient clipping"):
            torch.nn.utils.clip_grad_norm_(lora_params, 1.0)
        with ph("LoRA AdamW"):
            opt_l.step()
        loss.item(), loss_l.item()  # noqa: B018  (the script logs both every step)

    return step


def build(variant: str, size: str, batch: int, device: str, ph: Phases | None):
    if variant.startswith("sbv1-"):
        return sbv1(size, batch, device, variant.split("-")[1], ph)
    return ours(size, variant.split("-")[1], batch, device, "shared" if variant.endswith("-shared") else "split", ph)


def child(a: argparse.Namespace) -> None:
    """One variant in this process: print its JSON record on the last line."""
    torch.set_num_threads(a.threads)
    device = _arch.resolve_device(a.device)
    base_rss = _rss_mb()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ph = Phases() if a.profile else None
    step = build(a.variant, a.size, a.batch, device, ph)
    for i in range(a.warmup):
        step(i)
    _arch.sync(device)
    walls, cpus, phases = [], [], []
    for i in range(a.steps):
        if ph is not None:
            ph.seconds.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        with ph("other (sampling, losses, checks, logging)") if ph is not None else _nothing():
            step(a.warmup + i)
        _arch.sync(device)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        if ph is not None:
            phases.append(dict(ph.seconds))
    rec = {"variant": a.variant, "batch": a.batch, "steps": a.steps, "seconds": round(sum(walls), 3),
           "step_seconds_median": round(statistics.median(walls), 4),
           "cpu_seconds_per_step_median": round(statistics.median(cpus), 4)}
    if phases:
        rec["phases_cpu_ms"] = {k: round(1000 * statistics.median(p.get(k, 0.0) for p in phases), 1)
                                for k in sorted({k for p in phases for k in p})}
    if device == "cuda":
        rec["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    rec["peak_rss_mib"], rec["baseline_rss_mib"] = round(_rss_mb()), round(base_rss)
    print(json.dumps(rec))


@contextmanager
def _nothing():
    yield


def _run_child(a: argparse.Namespace, variant: str, device: str, profile: bool) -> dict:
    cmd = [sys.executable, __file__, "--variant", variant, "--size", a.size, "--device", device, "--batch",
           str(a.batch), "--steps", str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)]
    proc = subprocess.run(cmd + (["--profile"] if profile else []), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"variant {variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mfu(variant: str, images_per_second: float, gpu: str | None) -> float | None:
    peak = next((v for k, v in PEAK_TFLOPS_BF16.items() if gpu and k in gpu), None)
    if peak is None:
        return None
    scheme = "lora" if variant == "ours-lora" else "full"
    return round(100 * images_per_second * TFLOP_PER_IMAGE[scheme] / peak, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["toy", "sd21"], default="toy")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=4, help="per step (SBv2 used 16 per GPU)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps per process (default: toy 5, sd21 20)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3, help="processes per variant, interleaved across variants")
    ap.add_argument("--profile", action="store_true", help="one more process per variant, timing its phases")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", default=str(_arch.ROOT / "reports" / "bench"))
    ap.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # internal: run one variant
    a = ap.parse_args()
    a.steps = a.steps or (5 if a.size == "toy" else 20)
    if a.variant:
        return child(a)
    torch.set_num_threads(a.threads)  # recorded in the machine block; each child sets its own
    device = _arch.resolve_device(a.device)
    runs = defaultdict(list)
    for rep in range(a.repeats):  # A B C A B C: contention that comes and goes hits every variant alike
        for v in a.variants:
            runs[v].append(_run_child(a, v, device, False))
            print(f"repeat {rep + 1}: {runs[v][-1]}", flush=True)
    profiles = {v: _run_child(a, v, device, True)["phases_cpu_ms"] for v in a.variants} if a.profile else {}
    machine = _arch.machine(device)
    rows = []
    for v in a.variants:
        rs = runs[v]
        wall = statistics.median(r["step_seconds_median"] for r in rs)
        row = {"variant": v, "batch": a.batch, "repeats": len(rs), "steps_per_repeat": a.steps,
               "steps_per_second": round(1 / wall, 4), "images_per_second": round(a.batch / wall, 3),
               "cpu_seconds_per_step": round(statistics.median(r["cpu_seconds_per_step_median"] for r in rs), 4),
               "step_seconds_per_repeat": [r["step_seconds_median"] for r in rs],
               "peak_rss_mib": max(r["peak_rss_mib"] for r in rs), "baseline_rss_mib": rs[0]["baseline_rss_mib"]}
        if device == "cuda":
            row["peak_gpu_memory_gib"] = max(r["peak_gpu_memory_gib"] for r in rs)
            row["mfu_percent"] = _mfu(v, row["images_per_second"], machine.get("gpu"))
        rows.append(row)
    by = {r["variant"]: r for r in rows}
    for r in rows:
        for base in ("sbv1-plain", "sbv1-code"):
            if base in by:
                r[f"speedup_vs_{base}"] = round(r["steps_per_second"] / by[base]["steps_per_second"], 2)
                r[f"cpu_speedup_vs_{base}"] = round(by[base]["cpu_seconds_per_step"] / r["cpu_seconds_per_step"], 2)
    cuda = device == "cuda"
    prec = {v: ("bf16 autocast" if cuda and v.startswith("ours") else "fp32") for v in a.variants}
    table = ["| variant | precision | batch | steps / s | images / s | CPU s / step | peak memory | "
             "× sbv1-plain (wall / CPU) | × sbv1-code (wall / CPU) |" + (" MFU |" if cuda else ""),
             "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if cuda else "")]
    for r in rows:
        mem = f"{r['peak_gpu_memory_gib']} GiB (GPU)" if cuda else \
            f"{r['peak_rss_mib'] - r['baseline_rss_mib']} MiB (RSS above {r['baseline_rss_mib']} MiB)"
        vs = [f"{r.get(f'speedup_vs_{b}', '-')} / {r.get(f'cpu_speedup_vs_{b}', '-')}" for b in ("sbv1-plain",
                                                                                              "sbv1-code")]
        mfu = f" {r['mfu_percent']} % |" if cuda else ""
        table.append(f"| {r['variant']} | {prec[r['variant']]} | {r['batch']} | {r['steps_per_second']:.3f} | "
                     f"{r['images_per_second']:.2f} | {r['cpu_seconds_per_step']:.3f} | {mem} | {vs[0]} | {vs[1]} |"
                     + mfu)
    if profiles:
        labels = sorted({k for p in profiles.values() for k in p}, key=lambda k: -max(p.get(k, 0) for p in
                                                                                     profiles.values()))
        table += ["", "Where the time goes (CPU ms per step, exclusive, median of the timed steps of one extra "
                  "process per variant):", "",
                  "| phase | " + " | ".join(a.variants) + " |", "|---|" + "---:|" * len(a.variants)]
        for k in labels:
            table.append(f"| {k} | " + " | ".join(f"{profiles[v].get(k, 0):.1f}" for v in a.variants) + " |")
        table.append("| **total** | " + " | ".join(f"**{sum(profiles[v].values()):.1f}**" for v in a.variants)
                     + " |")
    record = {"machine": machine, "size": a.size, "architecture": _arch.SIZES[a.size], "rows": rows,
              "phases_cpu_ms": profiles, "warmup_steps": a.warmup, "precision": prec}
    notes = ["A step = student update (teacher and LoRA-teacher eps at cfg 4.5) + one LoRA-teacher denoising update; "
             "text embeddings precomputed, as in training. steps / s and images / s: median over the repeats of "
             "each process's median step; CPU s / step: the same for process time.",
             "ours-*: sb2bench.train.step.train_step with the trainer's parts (split teacher, fused AdamW; "
             "-shared: teacher_unet shared). sbv1-plain: separate teacher and LoRA-teacher UNets, batched CFG, "
             "fp32, default AdamW. sbv1-code: SwiftBrush v1's script layout (one UNet, adapter toggled, four "
             "unbatched CFG passes), fp32.",
             f"Interleaved {a.repeats} × ({', '.join(a.variants)}) in fresh processes. Contention caveat: the "
             "machine is shared (other jobs on the same cores); interleaving spreads that load over all variants "
             "and CPU time is less affected than wall time, but neither is free of it (caches, memory bandwidth)."]
    _arch.write_report("vsd_step", "VSD training step", record, table, notes, a.out_dir)


if __name__ == "__main__":
    main()
