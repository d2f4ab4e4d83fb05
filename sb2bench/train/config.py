"""The run config of a VSD training run: one flat dataclass, paper values as defaults.

Flat (not nested) so the lead can mirror it one-to-one in the JSON schema and so a run folder's
``train_config.json`` is readable at a glance. Defaults are SwiftBrush v2's published settings
where the paper gives them (arXiv 2408.14176v2 §5.1 and the supplementary material) and the
SwiftBrush v1 code otherwise; ``TOY_OVERRIDES`` holds the values that work on the CPU toy world.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sb2bench._infra.hashing import sha256_json

SCHEMES = ("full", "lora")
CLIP_MODES = ("none", "clamped", "unclamped")
SCHEDULES = ("constant", "linear", "cosine")
HPS_VERSIONS = ("v2.0", "v2.1")  # sb2bench.evaluate.metrics.hps.HPS_VERSIONS (not imported: it loads torch)
REG_LOSSES = ("mse_latent", "mse_pixel")
WEIGHTINGS = ("one_minus_alpha_bar", "constant")
LORA_LOSS_WEIGHTINGS = ("alpha_bar", "none")
NONFINITE_POLICIES = ("raise", "skip")
TEACHER_UNETS = ("split", "shared")
PRECISIONS = ("auto", "no", "bf16")  # fp16 would need a grad scaler: not supported
DEVICES = ("auto", "cpu", "cuda")
ATTN_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]

# Keys that change how a run is observed or stored, never what it computes: a resumed run may
# change them without invalidating its checkpoints.
NON_SEMANTIC = ("threads", "checkpoint_every", "checkpoint_total_limit", "log_every", "sample_every",
                "sample_prompts", "tensorboard", "text_embedding_cache", "text_embedding_cache_max_prompts", "resume",
                "lora_warmup_from", "teacher_unet", "diagnostics_every", "extend_from")


# Keys added after runs existed (the optional losses of issue 4): hashed only when set.
LATER_KEYS = ("global_batch_size", "hps_loss_weight", "hps_model", "hps_checkpoint", "hps_version", "hps_schedule",
              "reg_weight", "reg_pairs", "reg_batch_size", "reg_loss", "student_lora_lr")


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of a run. Comments give the paper value and its source."""

    # -- models and data
    teacher: str = ""                      # zoo spec of the frozen teacher pipeline (SD 2.1-base) [required]
    student_init: str = ""                 # zoo spec whose UNet initialises the student (sd-turbo = v2) [required]
    student_init_subfolder: str = "unet"   # UNet subfolder of student_init ("" = the folder itself)
    prompts: str = ""                      # JSONL prompt file (index, caption) [required]
    scheme: str = "full"                   # "full" fine-tune (Model A) or "lora" student (Model B)
    seed: int = 0
    max_steps: int = 1000                  # student updates (SBv2: not stated)
    batch_size: int = 16                   # per process and micro-batch (SBv2: 16 per GPU x 4)
    global_batch_size: int = 0             # prompts per student update over all processes and accumulation
    #                                        steps (SBv2: 64); processes x batch_size x accumulation must equal
    #                                        it, accumulation is chosen to fit; 0 = processes x batch_size
    # -- student optimiser
    student_lr: float = 1e-6               # SBv2 §5.1
    student_lora_rank: int = 256           # SBv2 §5.1 (scheme B)
    student_lora_alpha: float = 512.0      # SBv2 §5.1 (scheme B)
    student_lora_targets: list = field(default_factory=lambda: list(ATTN_TARGETS))
    student_lora_lr: float | None = None   # lr of the LoRA student (scheme lora); null = student_lr (SBv2 §5.1
    #                                        states one lr, 1e-6). Its up matrices start at 0, so a LoRA student
    #                                        needs a larger lr than a full one to leave its init in a short run
    lr_warmup_steps: int = 0
    adam_beta1: float = 0.9                # SBv2: not stated (torch default)
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2        # SBv2: not stated (torch AdamW default)
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0             # SBv1 code
    # -- VSD
    student_timestep: int = -1             # -1 = num_train_timesteps - 1 (= 999), SBv1/SBv2 inference
    t_min: int = 20                        # SBv1: t ~ U{20..980}
    t_max: int = 980
    teacher_cfg: float = 4.5               # SBv2 §5.1
    lora_cfg: float = 4.5                  # SBv1 code uses the teacher's scale; ProlificDreamer uses 1
    weighting: str = "one_minus_alpha_bar"  # w(t) = 1 - abar_t = sigma_t^2 (SBv1)
    # -- LoRA teacher (the "fake score" of VSD)
    lora_rank: int = 64                    # SBv2 §5.1
    lora_alpha: float = 128.0              # SBv2 §5.1
    lora_lr: float = 1e-3                  # SBv2 §5.1
    lora_targets: list = field(default_factory=lambda: list(ATTN_TARGETS))  # SBv1: to_q, to_v only
    lora_updates_per_step: int = 1         # SBv1/SBv2: 1 (alternating)
    lora_warmup_steps: int = 0             # not in SBv1/SBv2 (0): LoRA-teacher updates on the initial student's
    #                                        samples before the first student update, so the fake score starts
    #                                        at the student's distribution instead of the teacher's
    lora_warmup_from: str = ""             # folder of a saved warm-up of the same warm-up key (`sb2bench
    #                                        train-warmup`, the DAG's rule lora_warmup): a run starting at step 0
    #                                        loads it instead of warming up itself, with the same numbers; ""
    #                                        = warm up itself; one process only; a resumed run ignores it
    lora_null_prompt_prob: float = 0.1     # SBv1: 10 % caption dropout so the LoRA teacher supports CFG
    lora_loss_weighting: str = "alpha_bar"  # SBv1: MSE(sqrt(abar) eps_psi, sqrt(abar) eps) = abar-weighted
    # -- clamped CLIP loss (SBv2 Eq. 5)
    clip_loss: str = "none"                # "none" | "clamped" max(0, tau - cos) | "unclamped" 1 - cos
    clip_model: str | None = None          # open_clip spec (SBv2: ViT-B/32) [required when clip_loss != none]
    clip_decoder: str | None = None        # AutoencoderTiny or pipeline spec; None = the teacher's VAE
    clip_tau: float = 0.35                 # SBv2 §5.1
    clip_weight: float = 0.1               # SBv2 §5.1 (start value)
    clip_schedule: str = "linear"          # SBv2: "gradually reduced to zero" (shape unverified)
    clip_prompt_prefix: str = ""
    # -- HPSv2 loss (SBv2 Table 9, "Model B + HPSv2 loss"; weight and schedule not given: UNVERIFIED)
    hps_loss_weight: float = 0.0           # 0 = off; adds -w * mean(HPS(D(x0), prompt)) / 100 with D the CLIP-loss
    #                                        decoder (clip_decoder or the teacher's VAE); HPS model frozen
    hps_model: str | None = None           # open_clip spec (toy:clip-toy) or bare architecture (ViT-H-14) with
    #                                        hps_checkpoint [required when hps_loss_weight > 0]
    hps_checkpoint: str | None = None      # folder holding HPS_v2_compressed.pt / HPS_v2.1_compressed.pt;
    #                                        null = hps_model as it is (toy stand-in)
    hps_version: str = "v2.1"              # checkpoint file to load (hpsv2 1.2.0 default; SBv2's: UNVERIFIED)
    hps_schedule: str = "constant"         # weight schedule as clip_schedule (our choice; the paper says nothing)
    # -- image regularisation (SBv2 T3 "Ours*": 200K LAION-Aesthetic pairs, "regularisation [DMD]"; UNVERIFIED)
    reg_weight: float = 0.0                # 0 = off; DMD's paired regression of student(noise) onto the teacher's
    #                                        ODE output from the same noise (DMD: LPIPS, weight 0.25)
    reg_pairs: str | None = None           # folder from `sb2bench train-reg-pairs`: (noise, target latent, prompt)
    #                                        [required when reg_weight > 0]
    reg_batch_size: int = 4                # pairs per student step, a batch of its own (as in DMD)
    reg_loss: str = "mse_latent"           # "mse_latent" or "mse_pixel" (through the CLIP-loss decoder); DMD's
    #                                        LPIPS is not in our dependency set
    # -- engineering
    ema_decay: float | None = None         # None = no EMA student (SBv2 ships unet_ema; decay unknown)
    mixed_precision: str = "auto"          # auto = bf16 autocast on CUDA, fp32 on CPU
    device: str = "auto"
    gradient_checkpointing: bool = False
    teacher_unet: str = "split"            # "split": the frozen teacher is a plain UNet of its own, the LoRA teacher
    #                                        a second one (fastest, docs/speed.md); "shared": one UNet with the
    #                                        adapter toggled, as SBv1's code (one UNet less memory); same numbers
    nonfinite: str = "raise"               # "raise" or "skip" a step whose loss/grad is NaN/inf
    max_nonfinite_skips: int = 10          # with "skip": give up after this many skipped steps
    threads: int | None = None             # torch.set_num_threads
    text_embedding_cache: str | None = None  # folder; None = <out>/cache
    text_embedding_cache_max_prompts: int = 20000  # larger prompt sets are encoded per batch instead of held in
    #                                        memory (SD 2.1: 77 x 1024 floats = 315 KB a prompt; 3.3M would be 1 TB)
    checkpoint_every: int = 500
    checkpoint_total_limit: int | None = 2
    resume: bool = True                    # resume from the latest checkpoint-* in out_dir
    extend_from: str = ""                  # folder of a finished run whose config differs only in a smaller
    #                                        max_steps: a run with no checkpoints of its own starts from that
    #                                        run's (extend.py), as if it had been interrupted there; "" = off
    log_every: int = 10
    diagnostics_every: int = 0             # 0 = off; every N steps log the drift diagnostics of diagnostics.py
    #                                        (LoRA and frozen teacher denoising MSE on fresh student samples,
    #                                        cosine of the VSD update with the guidance term, per t bucket)
    sample_every: int = 0                  # 0 = no sample grids
    sample_prompts: int = 8
    tensorboard: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Validate a plain dict (unknown keys, types, ranges) with errors that name the key and the fix."""
        if not isinstance(d, dict):
            raise TypeError(f"train config must be a dict/JSON object, got {type(d).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"train config: unknown key(s) {unknown}; allowed keys: {sorted(fields)}")
        kw = {}
        for name, value in d.items():
            kw[name] = _coerce(name, value, _default(fields[name]))
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def need(ok: bool, key: str, msg: str) -> None:
            if not ok:
                raise ValueError(f"train config key {key!r}: {msg}")

        for key in ("teacher", "student_init", "prompts"):
            need(bool(getattr(self, key)), key, "is required (a zoo spec / prompt-file path)")
        choices = {"scheme": SCHEMES, "clip_loss": CLIP_MODES, "clip_schedule": SCHEDULES,
                   "hps_schedule": SCHEDULES, "hps_version": HPS_VERSIONS, "reg_loss": REG_LOSSES,
                   "weighting": WEIGHTINGS, "lora_loss_weighting": LORA_LOSS_WEIGHTINGS,
                   "nonfinite": NONFINITE_POLICIES, "mixed_precision": PRECISIONS, "device": DEVICES,
                   "teacher_unet": TEACHER_UNETS}
        for key, allowed in choices.items():
            need(getattr(self, key) in allowed, key, f"is {getattr(self, key)!r}; choose one of {list(allowed)}")
        for key in ("max_steps", "batch_size", "student_lora_rank", "lora_rank", "lora_updates_per_step",
                    "checkpoint_every", "log_every", "sample_prompts", "reg_batch_size",
                    "text_embedding_cache_max_prompts"):
            need(getattr(self, key) >= 1, key, f"must be >= 1 (got {getattr(self, key)})")
        for key in ("student_lr", "lora_lr", "student_lora_alpha", "lora_alpha", "max_grad_norm", "adam_eps"):
            need(getattr(self, key) > 0, key, f"must be > 0 (got {getattr(self, key)})")
        need(0 <= self.t_min <= self.t_max <= 999, "t_min/t_max", f"need 0 <= t_min <= t_max <= 999 "
             f"(got {self.t_min}, {self.t_max})")
        need(0 <= self.lora_null_prompt_prob < 1, "lora_null_prompt_prob", "must be in [0, 1)")
        need(self.clip_weight >= 0, "clip_weight", "must be >= 0")
        need(-1 <= self.clip_tau <= 1, "clip_tau", "is a cosine margin, must be in [-1, 1]")
        need(self.clip_loss == "none" or bool(self.clip_model), "clip_model",
             f"is required with clip_loss={self.clip_loss!r} (e.g. 'toy:clip-toy' or 'ViT-B-32:laion2b_s34b_b79k')")
        need(self.hps_loss_weight >= 0, "hps_loss_weight", "must be >= 0 (0 = off)")
        need(self.hps_loss_weight == 0 or bool(self.hps_model), "hps_model",
             f"is required with hps_loss_weight={self.hps_loss_weight} (e.g. 'toy:clip-toy', or 'ViT-H-14' with "
             f"hps_checkpoint), or set hps_loss_weight to 0")
        need(self.reg_weight >= 0, "reg_weight", "must be >= 0 (0 = off)")
        need(self.reg_weight == 0 or bool(self.reg_pairs), "reg_pairs",
             f"is required with reg_weight={self.reg_weight}: build a pairs folder with `sb2bench train-reg-pairs`, "
             f"or set reg_weight to 0")
        need(self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", "must be null or in (0, 1)")
        need(self.global_batch_size >= 0, "global_batch_size",
             f"must be >= 0 (0 = processes x batch_size; got {self.global_batch_size})")
        need(self.sample_every >= 0, "sample_every", "must be >= 0 (0 = off)")
        need(self.diagnostics_every >= 0, "diagnostics_every", "must be >= 0 (0 = off)")
        need(self.student_lora_lr is None or self.student_lora_lr > 0, "student_lora_lr",
             "must be null (= student_lr) or > 0")
        need(not self.extend_from or self.resume, "extend_from",
             "needs resume: true (a run that starts over cannot continue another run); drop one of the two")
        need(self.lora_warmup_steps >= 0, "lora_warmup_steps", "must be >= 0 (0 = off, the paper's setting)")
        need(self.checkpoint_total_limit is None or self.checkpoint_total_limit >= 1, "checkpoint_total_limit",
             "must be null (keep all) or >= 1")
        need(self.max_nonfinite_skips >= 0, "max_nonfinite_skips", "must be >= 0")
        need(self.student_timestep == -1 or 0 <= self.student_timestep <= 999, "student_timestep",
             "must be -1 (last training timestep) or in [0, 999]")
        for key in ("student_lora_targets", "lora_targets"):
            v = getattr(self, key)
            need(isinstance(v, list) and v and all(isinstance(s, str) for s in v), key,
                 "must be a non-empty list of module names, e.g. ['to_q', 'to_k', 'to_v', 'to_out.0']")

    @property
    def student_optimizer_lr(self) -> float:
        """The student optimiser's lr: ``student_lora_lr`` for a LoRA student when set, else ``student_lr``."""
        if self.scheme == "lora" and self.student_lora_lr is not None:
            return self.student_lora_lr
        return self.student_lr

    def accumulation(self, processes: int) -> int:
        """Micro-batches each process runs per student update, so that processes x batch_size x accumulation
        = global_batch_size on any process count (1 when global_batch_size is 0). A global batch the count
        cannot divide is refused with the numbers and the batch sizes that would fit."""
        processes = max(1, processes)
        per_update = processes * self.batch_size
        if self.global_batch_size == 0:
            return 1
        if self.global_batch_size % per_update == 0:
            return self.global_batch_size // per_update
        fits = [b for b in range(1, self.global_batch_size + 1)
                if self.global_batch_size % (processes * b) == 0][-3:]
        hint = (f"set batch_size to one of {fits} (each divides {self.global_batch_size} / {processes} "
                f"processes)" if fits else f"use a process count that divides {self.global_batch_size}")
        raise ValueError(f"train config key 'global_batch_size': {self.global_batch_size} is not a multiple of "
                         f"{processes} process(es) x batch_size {self.batch_size} = {per_update}, so no "
                         f"gradient-accumulation count fits; {hint}, or change the GPUs per training job "
                         f"(resources.gpus_per_train_job, the profile's gpu resource)")

    def global_batch(self, processes: int) -> int:
        """Prompts per student update on ``processes`` processes (after :meth:`accumulation`'s check)."""
        return max(1, processes) * self.batch_size * self.accumulation(processes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def semantic_hash(self) -> str:
        """Hash of the keys that change the computation; checkpoints refuse a run whose hash differs.
        Keys added later are left out at their defaults, so older runs keep their hash and resume."""
        defaults = {f.name: _default(f) for f in dataclasses.fields(self)}
        d = {k: v for k, v in self.to_dict().items()
             if k not in NON_SEMANTIC and not (k in LATER_KEYS and v == defaults[k])}
        return sha256_json(d)[:16]


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


# Keys that accept null, with the type of a non-null value.
NULLABLE = {"student_lora_lr": float, "clip_model": str, "clip_decoder": str, "hps_model": str,
            "hps_checkpoint": str, "reg_pairs": str,
            "ema_decay": float, "threads": int, "text_embedding_cache": str, "checkpoint_total_limit": int}


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Accept JSON types; ints for floats; reject bools for numbers and anything else mistyped."""
    if value is None:
        if name in NULLABLE:
            return None
        raise ValueError(f"train config key {name!r}: null is not allowed; remove the key for the default "
                         f"{default!r}")
    if name in NULLABLE:
        default = NULLABLE[name]()
    kind = type(default)
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is list:
        ok = isinstance(value, (list, tuple))
        value = list(value) if ok else value
    else:
        ok = isinstance(value, kind)
    if not ok:
        raise ValueError(f"train config key {name!r}: expected {kind.__name__}, got {value!r} "
                         f"({type(value).__name__})")
    return value


# The CPU toy world (calibration notes §3 + recommendation 4, then reports/bench/train_toy_evidence.md):
# from the toy turbo, student lr 2e-5 wrecked the student (FID 28 -> 65, an earlier run) and 5e-6 with a LoRA teacher
# that starts at the *teacher's* score (no warm-up, 2 updates/step) still drifted (FID 36.5); a LoRA
# teacher first fitted to the initial student (lora_warmup_steps 50) and kept up with 4 updates per
# student step holds FID at the init's level. The VSD form is SwiftBrush v1's (docs/recipe.md): CFG 4.5 on
# the frozen *and* the LoRA teacher with the abar-weighted LoRA loss. The earlier mix (LoRA teacher at cfg 1,
# DMD2's form, with SBv1's weighted loss and a rank-8 LoRA) made the update mostly the guidance term and the
# students drift into over-guidance; SBv1's form ran 1,000 steps from the teacher without drift (FID 108 ->
# 39; shared/reference/toy_calibration.md, "A longer SBv1-form run"). Ranks are scaled to the tiny UNet; a LoRA
# student gets its own lr (its B starts at 0; at 5e-6 toy Model B ended at its init: reports/bench/lora_student.md).
# A full student's lr is 2e-6 with an EMA student: at 5e-6 it swung by 30-50 FID (docs/recipe.md, "Convergence").
TOY_OVERRIDES: dict[str, Any] = {
    "batch_size": 32, "student_lr": 2e-6, "ema_decay": 0.95, "lora_cfg": 4.5, "lora_updates_per_step": 1,
    "lora_warmup_steps": 100,
    "lora_rank": 8, "lora_alpha": 16.0, "student_lora_rank": 16, "student_lora_alpha": 32.0, "student_lora_lr": 2e-4,
    "threads": 1, "checkpoint_every": 100, "log_every": 10, "diagnostics_every": 25,
}


def run_keys_table() -> str:
    """Markdown table of every run-config key: default and the comment beside it in ``TrainConfig``
    (one source of truth for the 'Training run keys' table in docs/training.md)."""
    import inspect
    import re

    source = inspect.getsource(TrainConfig).splitlines()
    notes, last = {}, None
    for line in source:
        field_line = re.match(r"\s{4}(\w+):([^#]*)(?:#\s*(.*))?$", line)
        comment_only = re.match(r"\s+#\s*(.*)$", line)
        if field_line and "=" in field_line.group(2):
            last = field_line.group(1) if field_line.group(3) else None
            notes[field_line.group(1)] = (field_line.group(3) or "").strip()
        elif comment_only and last and not comment_only.group(1).startswith("--"):  # "# -- x" heads a section
            notes[last] += " " + comment_only.group(1).strip()
        else:
            last = None
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(TrainConfig):
        default = _default(f)
        required = f.name in ("teacher", "student_init", "prompts")
        shown = "required" if required else f"`{default!r}`".replace("|", "\\|")
        rows.append(f"| `{f.name}` | {shown} | {notes.get(f.name, '').replace('|', '/')} |")
    return "\n".join(rows)
