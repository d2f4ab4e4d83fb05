"""``run(config, out_dir)``: build the parts, resume from the latest checkpoint, loop, export.
``train_warmup(config, out_dir)``: the LoRA-teacher warm-up alone, saved for runs to share (warmup.py).

Folder layout of ``out_dir``: ``checkpoints/checkpoint-{step}/``, ``log.csv``, ``samples/``,
``cache/`` (text embeddings unless ``text_embedding_cache`` is set), ``student/`` (final, see
export.py). Rerunning a finished run returns ``student/`` at once; rerunning an interrupted one
resumes from its latest checkpoint, provided the config's semantic hash is unchanged.

Under N processes (``sb2bench train --processes N``, launch.py) every rank trains a replica on its own
A micro-batches of ``batch_size`` prompts per step, A = the gradient-accumulation steps that make
N x batch_size x A = ``global_batch_size`` (SBv2: 64 = 16 per GPU x 4 GPUs, or 16 x 4 steps on one GPU),
with gradients accumulated over the micro-batches and averaged over the ranks (distributed.py, step.py).
Rank 0 alone writes the log, samples, checkpoints and the export; every rank resumes from the same
checkpoint, which stores every micro-batch's random stream, so it resumes on any layout of the same
global batch.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from sb2bench._infra.progress import Progress
from sb2bench.models import zoo
from sb2bench._infra.device import resolve_device
from sb2bench.data.prompts import read_prompts
from sb2bench.plan.paths import STUDENT
from sb2bench.train import checkpoint, diagnostics, distributed, extend, lora, warmup
from sb2bench.train.clip_guidance import ClipScorer, load_decoder
from sb2bench.train.config import TrainConfig
from sb2bench.train.ema import TrainableEMA
from sb2bench.train.embeddings import BatchEncoder, prompt_embeddings
from sb2bench.train.export import export_student
from sb2bench.train.hps_guidance import HpsScorer
from sb2bench.train.regularisation import RegPairs
from sb2bench.train.runlog import HPS_COLUMNS, REG_COLUMNS, RunLog
from sb2bench.train.samples import write_samples
from sb2bench.train.step import Parts, lora_warmup_step, train_step
from sb2bench.train.student import load_student, student_timestep
from sb2bench.train.teacher import build_teacher


def _accelerator(cfg: TrainConfig):
    from accelerate import Accelerator

    cuda = resolve_device(cfg.device, "train config key 'device'") == "cuda"
    precision = ("bf16" if cuda else "no") if cfg.mixed_precision == "auto" else cfg.mixed_precision
    if precision == "bf16" and not cuda:
        raise ValueError("train config key 'mixed_precision': bf16 autocast is for CUDA here; use 'auto' or 'no' on CPU")
    return Accelerator(cpu=not cuda, mixed_precision=precision)  # joins the process group when launched


def _check_compatible(student, teacher_unet, cond: torch.Tensor) -> None:
    s, t = student.config, teacher_unet.config
    for key in ("in_channels", "sample_size", "cross_attention_dim"):
        if s[key] != t[key]:
            raise ValueError(f"student_init and teacher UNets differ in {key} ({s[key]} vs {t[key]}); "
                             f"they must share the latent space and text encoder")
    if cond.shape[-1] != t.cross_attention_dim:
        raise ValueError(f"text embeddings have width {cond.shape[-1]}, the teacher expects "
                         f"{t.cross_attention_dim}: the teacher's text encoder does not match its UNet")


def adamw(params: list[torch.nn.Parameter], lr: float, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW with the run's betas, decay and eps, as one fused kernel over all tensors (CPU and CUDA): a
    toy full-student step took 39 ms with the default per-tensor loop, 8 ms fused (docs/speed.md); the
    update is the same to float rounding."""
    return torch.optim.AdamW(params, lr=lr, betas=(cfg.adam_beta1, cfg.adam_beta2), weight_decay=cfg.adam_weight_decay,
                             eps=cfg.adam_eps, fused=True)


def _constant_with_warmup(opt, warmup: int, factor: int = 1):
    """factor: scheduler steps per student step (the LoRA optimiser steps k times per iteration)."""
    w = warmup * factor
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / w) if w > 0 else 1.0)


def _reg_pairs(cfg: TrainConfig, student, cache_dir: Path | None, device: torch.device | str = "cpu") -> RegPairs:
    """The regulariser's pairs with their captions' text embeddings (the teacher's encoder, cached)."""
    reg = RegPairs.open(cfg.reg_pairs)
    c = student.config
    shape = [c.in_channels, c.sample_size, c.sample_size]
    if reg.manifest["latent_shape"] != shape:
        raise ValueError(f"train config key 'reg_pairs': {cfg.reg_pairs} holds latents of shape "
                         f"{reg.manifest['latent_shape']}, the student makes {shape}; build the pairs with "
                         f"this run's teacher")
    cache = cache_dir or (Path(cfg.text_embedding_cache) if cfg.text_embedding_cache else None)
    if cache is None:
        raise ValueError("the regulariser needs a text-embedding cache folder: set text_embedding_cache")
    if len(reg.captions) > cfg.text_embedding_cache_max_prompts:  # SBv2: 200K pairs
        reg.cond = BatchEncoder(cfg.teacher, reg.captions, device)
    else:
        reg.cond = prompt_embeddings(cfg.teacher, reg.captions, cache)[0]
    return reg


def build_parts(cfg: TrainConfig, acc, cond_sample: torch.Tensor, cache_dir: Path | None = None) -> Parts:
    torch.manual_seed(cfg.seed)  # LoRA init is random (A matrices)
    student = load_student(cfg).to(acc.device)
    teacher = build_teacher(cfg).to(acc.device)
    _check_compatible(student, teacher.unet, cond_sample)
    scheduler = zoo.load_scheduler(cfg.teacher, "ddpm")
    acp = scheduler.alphas_cumprod.to(acc.device)
    student_params = [p for p in student.parameters() if p.requires_grad]
    opt_s = adamw(student_params, cfg.student_optimizer_lr, cfg)
    opt_l = adamw(teacher.lora_parameters(), cfg.lora_lr, cfg)
    clip, hps, decoder = None, None, None
    if cfg.clip_loss != "none" or cfg.hps_loss_weight > 0 or (cfg.reg_weight > 0 and cfg.reg_loss == "mse_pixel"):
        decoder = load_decoder(cfg.clip_decoder or cfg.teacher).to(acc.device)
    if cfg.clip_loss != "none":
        clip = ClipScorer(cfg.clip_model, decoder, cfg.clip_prompt_prefix).to(acc.device)
    if cfg.hps_loss_weight > 0:
        hps = HpsScorer(cfg.hps_model, cfg.hps_version, cfg.hps_checkpoint, decoder).to(acc.device)
    reg = _reg_pairs(cfg, student, cache_dir, acc.device) if cfg.reg_weight > 0 else None
    gens = micro_streams(cfg, acc.process_index, acc.num_processes)
    return Parts(cfg=cfg, student=student, teacher=teacher, scheduler=scheduler, acp=acp,
                 student_t=student_timestep(scheduler, cfg.student_timestep), opt_student=opt_s, opt_lora=opt_l,
                 lr_student=_constant_with_warmup(opt_s, cfg.lr_warmup_steps),
                 lr_lora=_constant_with_warmup(opt_l, cfg.lr_warmup_steps, cfg.lora_updates_per_step),
                 accelerator=acc, gen=gens[0], gens=gens, clip=clip, hps=hps, reg=reg, decoder=decoder,
                 ema=TrainableEMA(student, cfg.ema_decay) if cfg.ema_decay else None, device=acc.device,
                 student_params=student_params)


def micro_streams(cfg: TrainConfig, rank: int, processes: int) -> list[torch.Generator]:
    """The random streams of ``rank``'s micro-batches: micro-batch k of rank r is slot r x A + k of the global
    batch (A = accumulation steps) and draws from the stream seeded by its slot alone (slot 0: cfg.seed, as
    one process always drew; slot r of an unaccumulated run: as rank r always drew). So 1 x 4, 2 x 2 and
    4 x 1 (processes x accumulation) draw the same samples for the same global batch."""
    accumulation = cfg.accumulation(processes)
    return [torch.Generator().manual_seed(distributed.rank_seed(cfg.seed, rank * accumulation + k))
            for k in range(accumulation)]


def _replicated(p: Parts) -> list[torch.Tensor]:
    """The tensors every rank must hold identically: trainable student and LoRA teacher, the EMA."""
    tensors = p.student_params + p.teacher.lora_parameters()
    return tensors + (list(p.ema.state_dict().values()) if p.ema is not None else [])


def _save(p: Parts, root: Path, step: int) -> None:
    """Every rank calls this (each micro-batch's random stream is gathered, in slot order); rank 0 alone writes."""
    gens = [g.clone() for rank in distributed.gather(torch.stack([g.get_state() for g in p.gens])) for g in rank]
    if not distributed.is_main():
        return
    tensors = {"student": lora.trainable_state(p.student), "lora_teacher": lora.trainable_state(p.teacher.unet)}
    if p.ema is not None:
        tensors["ema"] = p.ema.state_dict()
    state = {"opt_student": p.opt_student.state_dict(), "opt_lora": p.opt_lora.state_dict(),
             "lr_student": p.lr_student.state_dict(), "lr_lora": p.lr_lora.state_dict(),
             "gen": p.gens[0].get_state(), "torch_rng": torch.get_rng_state(), "nonfinite_skips": p.nonfinite_skips}
    if len(gens) > 1:
        state["gen_slots"] = gens
    world = distributed.size()
    meta = {"config_hash": p.cfg.semantic_hash(), "world_size": world, "accumulation": len(p.gens),
            "global_batch_size": p.cfg.batch_size * len(gens)}
    checkpoint.save(root, step, tensors, state, meta, p.cfg.checkpoint_total_limit)


def _restore(p: Parts, path: Path) -> int:
    tensors, state, meta = checkpoint.read(path)
    if meta["config_hash"] != p.cfg.semantic_hash():
        raise ValueError(f"{path} was written by a run with another config (hash {meta['config_hash']}, now "
                         f"{p.cfg.semantic_hash()}); use a new out_dir, or set resume=false to start over")
    world = meta.get("world_size", 1)  # checkpoints from before multi-process training: one process
    saved = meta.get("global_batch_size", world * p.cfg.batch_size)  # before accumulation: processes x batch
    now = p.cfg.batch_size * len(p.gens) * distributed.size()
    if saved != now:
        raise ValueError(f"{path} was written with a global batch of {saved} ({world} process(es) x batch_size "
                         f"{p.cfg.batch_size} x {meta.get('accumulation', 1)} accumulation step(s)), this run's is "
                         f"{now} ({distributed.size()} x {p.cfg.batch_size} x {len(p.gens)}): the update and the "
                         f"random streams depend on it; resume on {world} process(es) (with global_batch_size set: "
                         f"on any count whose processes x batch_size divides it), or use a new out_dir")
    lora.load_trainable(p.student, tensors["student"], "student")
    lora.load_trainable(p.teacher.unet, tensors["lora_teacher"], "LoRA teacher")
    if p.ema is not None:
        p.ema.load_state_dict(tensors["ema"])
    p.opt_student.load_state_dict(state["opt_student"])
    p.opt_lora.load_state_dict(state["opt_lora"])
    p.lr_student.load_state_dict(state["lr_student"])
    p.lr_lora.load_state_dict(state["lr_lora"])
    slots = state.get("gen_slots") or state.get("gen_ranks") or [state["gen"]]  # gen_ranks: before accumulation
    first = distributed.rank() * len(p.gens)
    for g, saved_state in zip(p.gens, slots[first:first + len(p.gens)]):
        g.set_state(saved_state.contiguous().clone())  # a whole tensor of its own: set_state reads raw bytes
    torch.set_rng_state(state["torch_rng"])
    p.nonfinite_skips = state["nonfinite_skips"]
    return meta["step"]


def _check_replicas(p: Parts) -> None:
    """The invariant of gradient averaging, proven once at the end (exact, two all-reduces)."""
    if not distributed.replicas_identical(_replicated(p)):
        raise RuntimeError("the ranks' trainable weights differ at the end of training: gradient averaging "
                           "failed to keep the replicas identical (a bug; please report it)")


def _prompts_and_parts(cfg: TrainConfig, acc, cache: Path):
    """(prompts, cond_all, null, cache file, parts): the text embeddings (rank 0 first, filling the cache)
    and the parts, as a run and a warm-up (train_warmup) both need them."""
    prompts = read_prompts(cfg.prompts)
    captions = [p["caption"] for p in prompts]
    with distributed.main_first():  # rank 0 fills the text-embedding cache, the others then read it
        if len(captions) > cfg.text_embedding_cache_max_prompts:
            cond_all = BatchEncoder(cfg.teacher, captions, acc.device)
            null, cache_file = cond_all.null(), "encoded per batch"
        else:
            cond_all, null, cache_file = prompt_embeddings(cfg.teacher, captions, cache)
        p = build_parts(cfg, acc, cond_all[:1], cache)
    return prompts, cond_all, null, cache_file, p


def _warm_up(p: Parts, cond_all, null: torch.Tensor) -> float:
    """``lora_warmup_steps`` LoRA-teacher turns on the initial student's samples; returns the seconds.
    One function for run and train_warmup, so a shared warm-up is the one a run would do itself."""
    t_w, w = time.time(), {}
    for i in range(p.cfg.lora_warmup_steps):
        w = lora_warmup_step(p, i, cond_all, null)
    seconds = time.time() - t_w
    if distributed.is_main():
        print(f"[train] LoRA-teacher warm-up: {p.cfg.lora_warmup_steps} steps in {seconds:.1f} s, "
              f"last loss_lora={w.get('loss_lora', float('nan')):.4g}", flush=True)
    return seconds


def train_warmup(config: dict | TrainConfig, out_dir: str | Path) -> Path:
    """Only the LoRA-teacher warm-up of ``config``, saved to ``out_dir`` (warmup.py) for the runs that share
    its warm-up key (their ``lora_warmup_from``); returns ``out_dir``. A finished folder that a run of
    this config would accept is returned as is; any other finished folder is refused, not overwritten."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    cfg.validate()
    out = Path(out_dir)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    acc = _accelerator(cfg)
    if acc.num_processes > 1:
        raise ValueError(f"sb2bench train-warmup runs in one process (it was launched in {acc.num_processes}); "
                         f"a shared warm-up is for one-process runs")
    if (out / warmup.META).exists():
        warmup.verify(out, cfg, acc.device.type, acc.mixed_precision)
        return out
    with tempfile.TemporaryDirectory() as tmp:  # the text-embedding cache when the config names none
        _, cond_all, null, _, p = _prompts_and_parts(cfg, acc, Path(cfg.text_embedding_cache or tmp))
        seconds = _warm_up(p, cond_all, null)
    return warmup.save(p, out, seconds)


def run(config: dict | TrainConfig, out_dir: str | Path) -> Path:
    """Train a student per ``config`` into ``out_dir``; returns the final ``out_dir/student`` folder."""
    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    cfg.validate()
    out, t0 = Path(out_dir), time.time()
    final, ckpt_root = out / STUDENT, out / "checkpoints"
    if final.exists() and (final / "provenance.json").exists():
        done = json.loads((final / "provenance.json").read_text())
        if done.get("config_hash") == cfg.semantic_hash():
            return final
        raise ValueError(f"{final} holds a student trained with another config; use a new out_dir or delete it")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    acc = _accelerator(cfg)
    main, world = acc.is_main_process, acc.num_processes
    warmup.check_processes(cfg, world)
    if main:
        print(f"[train] global batch {cfg.global_batch(world)} = {world} process(es) x batch_size {cfg.batch_size} "
              f"x {cfg.accumulation(world)} accumulation step(s)", flush=True)
    if not cfg.resume and ckpt_root.exists() and main:
        shutil.rmtree(ckpt_root)
    if cfg.extend_from and cfg.resume:
        fresh = not checkpoint.checkpoints(ckpt_root)
        distributed.barrier()  # every rank has looked before rank 0 copies
        if fresh:
            found = extend.verify(cfg, Path(cfg.extend_from))  # on every rank, so a refusal stops them all
            if main:
                print(f"[train] extending {cfg.extend_from} from step "
                      f"{extend.adopt(cfg, Path(cfg.extend_from), found, out)}", flush=True)
        distributed.barrier()
    cache = Path(cfg.text_embedding_cache or out / "cache")
    prompts, cond_all, null, cache_file, p = _prompts_and_parts(cfg, acc, cache)
    captions = [r["caption"] for r in prompts]
    last = checkpoint.latest(ckpt_root) if cfg.resume else None
    start = _restore(p, last) if last is not None else 0
    distributed.broadcast_(_replicated(p))  # identical by construction; made certain
    extra = ((HPS_COLUMNS if cfg.hps_loss_weight > 0 else ()) + (REG_COLUMNS if cfg.reg_weight > 0 else ())
             + (diagnostics.COLUMNS if cfg.diagnostics_every else ()))
    log = RunLog(out / "log.csv", start, out / "tensorboard" if cfg.tensorboard else None, extra) if main else None
    vae = zoo.load_vae(cfg.teacher).to(acc.device).eval() if cfg.sample_every and main else None
    n_s = min(cfg.sample_prompts, len(prompts))
    sample = (lambda s: write_samples(p.student, p.acp, p.student_t, vae, cond_all[:n_s].to(acc.device),
                                      [r["index"] for r in prompts[:n_s]], cfg.seed, out / "samples", s))
    if vae is not None and start == 0:
        sample(0)
    shared = None  # a resumed run restores the warmed-up LoRA from its checkpoint (and ignores lora_warmup_from)
    if start == 0 and cfg.lora_warmup_from:
        shared = warmup.load(p, cfg.lora_warmup_from)
        print(f"[train] LoRA-teacher warm-up: {shared['steps']} steps loaded from {cfg.lora_warmup_from} "
              f"(warm-up key {shared['key']})", flush=True)
    elif start == 0 and cfg.lora_warmup_steps:
        _warm_up(p, cond_all, null)
    progress = Progress(f"train {out}", cfg.max_steps, "step", start=start, enabled=main)
    for step in range(start, cfg.max_steps):
        logs = train_step(p, step, cond_all, null, captions)
        done = step + 1
        progress.update()
        diagnose = bool(cfg.diagnostics_every) and (done % cfg.diagnostics_every == 0 or done in (1, cfg.max_steps))
        if diagnose:  # every rank (mean_logs below is a collective); no draw from the run's generators
            logs.update(diagnostics.drift(p, done, cond_all, null))
        if diagnose or done % cfg.log_every == 0 or done in (1, cfg.max_steps):
            logs = distributed.mean_logs(logs)  # every rank: a collective
            if log is not None:
                log.write(done, logs)
        if vae is not None and (done % cfg.sample_every == 0 or done == cfg.max_steps):
            sample(done)
        if done % cfg.checkpoint_every == 0 or done == cfg.max_steps:
            _save(p, ckpt_root, done)
    if log is not None:
        log.close()
    _check_replicas(p)
    summary = {"steps": cfg.max_steps, "resumed_from": start, "nonfinite_skips": p.nonfinite_skips,
               "text_embeddings": str(cache_file), "wall_seconds_this_process": round(time.time() - t0, 1),
               "device": str(acc.device), "mixed_precision": acc.mixed_precision,
               "processes": world, "accumulation": len(p.gens), "global_batch_size": cfg.batch_size * world * len(p.gens)}
    if world > 1:
        summary["replicas_bit_identical"] = True  # _check_replicas passed
    if shared is not None:
        summary["lora_warmup"] = {"from": cfg.lora_warmup_from, "key": shared["key"]}
    if cfg.extend_from:
        summary["extended_from"] = cfg.extend_from
    if p.reg is not None:
        summary["reg_pairs"] = {"path": cfg.reg_pairs, "content_hash": p.reg.content_hash}
    if main:
        export_student(final, cfg, p.student, p.teacher.unet, p.ema, summary)
    distributed.barrier()  # the other ranks return once the student exists
    return final
