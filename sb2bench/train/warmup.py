"""The LoRA-teacher warm-up as a folder that several runs can share.

The warm-up (``lora_warmup_steps`` LoRA turns on the initial student's samples) depends on only part of
a run config: runs that differ in keys used after it (``max_steps``, the CLIP/HPS losses, the
regulariser, ...) compute the same warm-up bit for bit. ``warmup_key`` names that part, the DAG's rule
``lora_warmup`` computes each key once (``sb2bench train-warmup``, :func:`sb2bench.train.trainer.train_warmup`)
and every run of that key starts from the saved state (``lora_warmup_from``) instead of repeating it.

What a warm-up changes, and so what the folder holds: the LoRA teacher's trainable weights, its
optimiser and LR-schedule states, the run's random generator ``gen`` and the non-finite skip count.
It never draws from torch's global generator (tests/train/test_train_warmup.py checks it), so a run keeps
its own global stream either way. This module imports torch only inside the functions that need it:
the Snakefile computes keys at parse time.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb2bench._infra.hashing import sha256_json
from sb2bench.train.config import NON_SEMANTIC, TrainConfig

if TYPE_CHECKING:
    from sb2bench.train.step import Parts

FORMAT = 1  # raise when the folder layout or what a warm-up computes changes: old keys then miss
META = "warmup.json"
TENSORS = "lora_teacher"

# Keys that cannot influence the warm-up: read only by the student turn, by models loaded after the
# teacher's LoRA init (which never touch the warm-up's draws), or by logging and storage. Decided by
# reading trainer.build_parts, step.lora_warmup_step / lora_turn and trainer.run; every key is checked by
# tests/train/test_train_warmup.py (changing it leaves the saved state bit-identical). Deliberately *kept* in the
# key although some look harmless: ``threads`` (1 -> 2 CPU threads changes the warm-up's bits: reduction
# order), ``text_embedding_cache_max_prompts`` (per-batch encoding instead of the cached tensor),
# ``gradient_checkpointing`` (recomputed activations), ``scheme`` and ``student_lora_*`` (the LoRA
# student's init draws from the global generator right before the teacher's LoRA init does), and
# everything the LoRA turn reads (``lora_*``, ``adam_*``, ``max_grad_norm``, ``lr_warmup_steps``,
# ``batch_size``, ``nonfinite``, ``max_nonfinite_skips``, ``student_timestep``, ``device``, ``mixed_precision``).
POST_WARMUP_KEYS: tuple[str, ...] = (
    "max_steps", "student_lr",                                       # the student optimiser and loop
    "t_min", "t_max", "teacher_cfg", "lora_cfg", "weighting",        # the VSD loss (student turn)
    "clip_loss", "clip_model", "clip_decoder", "clip_tau", "clip_weight", "clip_schedule", "clip_prompt_prefix",
    "hps_loss_weight", "hps_model", "hps_checkpoint", "hps_version", "hps_schedule",
    "reg_weight", "reg_pairs", "reg_batch_size", "reg_loss",
    "ema_decay",
    *(k for k in NON_SEMANTIC if k not in ("threads", "text_embedding_cache_max_prompts")),
)


def warmup_config(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """The full config (defaults filled) without POST_WARMUP_KEYS: what a warm-up computes from. Runs of
    one key give the same dict, so it is the warm-up job's config whichever of them it came from."""
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    return {k: v for k, v in cfg.to_dict().items() if k not in POST_WARMUP_KEYS}


def warmup_job_config(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """The config of the warm-up job of ``cfg``'s key: the warm-up keys that differ from their defaults
    (the same for every run of the key, so editing a run's later keys never reruns the warm-up), and the
    run's text-embedding cache (where the runs find their embeddings, keyed by content)."""
    cfg = cfg if isinstance(cfg, TrainConfig) else TrainConfig.from_dict(cfg)
    defaults = warmup_config(TrainConfig(teacher="-", student_init="-", prompts="-"))
    out = {k: v for k, v in warmup_config(cfg).items() if k in ("teacher", "student_init", "prompts")
           or v != defaults[k]}
    return out | ({"text_embedding_cache": cfg.text_embedding_cache} if cfg.text_embedding_cache else {})


def warmup_key(cfg: TrainConfig | dict[str, Any]) -> str:
    """16 hex digits naming the warm-up of ``cfg`` (torch-free: the Snakefile calls it at parse time)."""
    return sha256_json({"format": FORMAT, "config": warmup_config(cfg)})[:16]


def check_processes(cfg: TrainConfig, processes: int) -> None:
    """A warm-up is one process's state (one random stream); N processes would each need their own."""
    if cfg.lora_warmup_from and processes > 1:
        raise ValueError(f"train config key 'lora_warmup_from' ({cfg.lora_warmup_from}): a shared LoRA warm-up is "
                         f"for one-process runs, this run has {processes} processes (each warms up on its own "
                         f"random stream); remove the key so the run warms up itself, or train with one process")


def _identities(cfg: TrainConfig) -> dict[str, Any]:
    """Content identities of what the key only names by path or spec: the models and the prompt file."""
    from sb2bench.models import zoo
    from sb2bench._infra.hashing import sha256_file

    return {"teacher": zoo.describe(cfg.teacher), "student_init": zoo.describe(cfg.student_init),
            "prompts": {"path": cfg.prompts, "sha256": sha256_file(cfg.prompts)}}


def _same_identity(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal content; a local model's location may move (its sha256 is the identity)."""
    if "sha256" in a or "sha256" in b:
        return a.get("sha256") == b.get("sha256")
    return a == b


def save(p: Parts, out: str | Path, seconds: float) -> Path:
    """Write the warm-up state of ``p`` to ``out`` atomically (a killed job leaves no finished-looking folder)."""
    from sb2bench._infra.provenance import record
    from sb2bench.train import checkpoint, lora

    acc = p.accelerator
    tensors = {TENSORS: lora.trainable_state(p.teacher.unet)}
    state = {"opt_lora": p.opt_lora.state_dict(), "lr_lora": p.lr_lora.state_dict(), "gen": p.gen.get_state(),
             "nonfinite_skips": p.nonfinite_skips}
    meta = record(format=FORMAT, key=warmup_key(p.cfg), config=warmup_config(p.cfg), steps=p.cfg.lora_warmup_steps,
                  wall_seconds=round(seconds, 1), world_size=1, device=acc.device.type,
                  mixed_precision=acc.mixed_precision, **_identities(p.cfg))
    return checkpoint.write(Path(out), tensors, state, meta, META)


def read_meta(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / META
    if not path.is_file():
        raise ValueError(f"train config key 'lora_warmup_from': {path} does not exist, so {folder} is no finished "
                         f"LoRA warm-up; build it with `sb2bench train-warmup --config <run config> --out {folder}` "
                         f"(the DAG's rule lora_warmup)")
    return json.loads(path.read_text())


def verify(folder: str | Path, cfg: TrainConfig, device: str, mixed_precision: str) -> dict[str, Any]:
    """The meta of ``folder`` if it is the warm-up this run would compute, else a ValueError naming the file,
    the field that differs and the fix."""
    meta, path = read_meta(folder), Path(folder) / META
    fix = (f"point lora_warmup_from at this config's warm-up, or delete {folder} and rerun the lora_warmup rule "
           f"(`sb2bench train-warmup --config <this run's config> --out {folder}`)")
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: warm-up format {meta.get('format')}, this sb2bench writes {FORMAT}; {fix}")
    if meta["key"] != warmup_key(cfg):
        ours, theirs = warmup_config(cfg), meta["config"]
        diff = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
        said = "; ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in diff[:3]) or "no key"
        raise ValueError(f"{path} is the LoRA warm-up of another config (warm-up key {meta['key']}, this run's "
                         f"{warmup_key(cfg)}), differing in {said}; {fix}")
    for field, ours in _identities(cfg).items():
        if not _same_identity(meta[field], ours):
            raise ValueError(f"{path}: its {field} was {meta[field]}, this run's is {ours} (the content changed "
                             f"since the warm-up); {fix}")
    for field, ours in (("world_size", 1), ("device", device), ("mixed_precision", mixed_precision)):
        if meta[field] != ours:
            raise ValueError(f"{path}: warmed up with {field} {meta[field]!r}, this run has {ours!r}; {fix}")
    return meta


def load(p: Parts, folder: str | Path) -> dict[str, Any]:
    """Put the verified warm-up state of ``folder`` into ``p``: afterwards ``p`` is exactly as if the run
    had just done its own warm-up. Returns the folder's meta."""
    from sb2bench.train import checkpoint, lora

    meta = verify(folder, p.cfg, p.accelerator.device.type, p.accelerator.mixed_precision)
    tensors, state, _ = checkpoint.read(Path(folder), META)
    lora.load_trainable(p.teacher.unet, tensors[TENSORS], f"LoRA teacher of {Path(folder) / META}")
    p.opt_lora.load_state_dict(state["opt_lora"])
    p.lr_lora.load_state_dict(state["lr_lora"])
    p.gen.set_state(state["gen"])
    p.nonfinite_skips = state["nonfinite_skips"]
    return meta
