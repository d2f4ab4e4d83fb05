"""Weight interpolation of two students, θ = λ·θ_A + (1 − λ)·θ_B (SBv2 Eq. 6), LoRA fused first.

SBv2's final model merges a fully fine-tuned student (A) with a LoRA student (B) at λ = 0.5, so a
LoRA input is first fused into its base UNet (W + (alpha / rank)·B@A). Inputs are zoo specs
(hub id, local folder, ``toy:NAME``) of a full UNet, or local LoRA folders (see
:data:`LORA_CONFIG`). Architectures and λ are checked from the configs *before* any weights load.
The result is a diffusers UNet folder (``save_pretrained``, safetensors) written atomically, with
``merge.json`` recording the inputs' content hashes, λ and package versions.

LoRA folder layout::

    lora_config.json        {"format": "sb2bench-lora/1", "base": "<zoo spec of the base UNet>",
                             "base_subfolder": "unet", "rank": 4, "alpha": 8,
                             "target_modules": ["to_q", "to_v"]}
    pytorch_lora_weights.safetensors    diffusers format (keys optionally prefixed "unet."), or
    adapter_config.json + adapter_model.safetensors   a peft adapter saved from PeftModel(unet)
"""
from __future__ import annotations

import hashlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sb2bench.models import zoo
from sb2bench._infra.atomic import atomic_dir, write_json
from sb2bench._infra.hashing import sha256_file, sha256_tree
from sb2bench._infra.provenance import record

LORA_CONFIG = "lora_config.json"
LORA_FORMAT = "sb2bench-lora/1"
DIFFUSERS_LORA = "pytorch_lora_weights.safetensors"
PEFT_CONFIG, PEFT_WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
ADAPTER = "sb2bench_merge"


class MergeError(ValueError):
    """Inputs that cannot be merged; the message names them and the fix."""


@dataclass(frozen=True)
class LoraSpec:
    """A parsed LoRA folder: where its weights are and which UNet they adapt."""
    folder: Path
    base: str
    base_subfolder: str | None
    rank: int
    alpha: float
    target_modules: tuple[str, ...]
    weights: Path
    kind: str  # "diffusers" | "peft"

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def write_lora_config(folder: str | Path, base: str, rank: int, alpha: float, target_modules: list[str],
                      base_subfolder: str | None = "unet") -> Path:
    """Write the small JSON that makes a LoRA folder self-describing (trainers call this on export)."""
    path = Path(folder) / LORA_CONFIG
    write_json(path, {"format": LORA_FORMAT, "base": base, "base_subfolder": base_subfolder, "rank": int(rank),
                      "alpha": float(alpha), "target_modules": sorted(target_modules)})
    return path


def _local_dir(spec: str) -> Path | None:
    try:
        ref = zoo.resolve(spec)
    except zoo.ModelNotFoundError:
        return None
    return ref.path if ref.kind == "local" and ref.path.is_dir() else None


def read_lora(spec: str) -> LoraSpec | None:
    """The LoRA described by ``spec``, or None when ``spec`` is not a LoRA folder."""
    folder = _local_dir(spec)
    if folder is None:
        return None
    has_weights = (folder / DIFFUSERS_LORA).exists() or (folder / PEFT_WEIGHTS).exists()
    if not (folder / LORA_CONFIG).exists():
        if has_weights:
            raise MergeError(
                f"{spec!r} holds LoRA weights but no {LORA_CONFIG}, so its base UNet is unknown. Add "
                f'{folder / LORA_CONFIG} like {{"format": "{LORA_FORMAT}", "base": "<base UNet spec>", '
                f'"base_subfolder": "unet", "rank": R, "alpha": A, "target_modules": ["to_q", "to_v"]}} '
                f"(sb2bench.merge.interpolate.write_lora_config writes it).")
        return None
    try:
        cfg = json.loads((folder / LORA_CONFIG).read_text())
    except json.JSONDecodeError as exc:
        raise MergeError(f"{folder / LORA_CONFIG} is not valid JSON ({exc})") from exc
    missing = [k for k in ("base", "rank", "alpha", "target_modules") if k not in cfg]
    if missing or cfg.get("format", LORA_FORMAT) != LORA_FORMAT:
        raise MergeError(f"{folder / LORA_CONFIG}: needs format {LORA_FORMAT!r} and keys base, rank, alpha, "
                         f"target_modules; missing {missing}, format {cfg.get('format')!r}.")
    if int(cfg["rank"]) <= 0 or float(cfg["alpha"]) <= 0:
        raise MergeError(f"{folder / LORA_CONFIG}: rank and alpha must be positive, got {cfg['rank']}, {cfg['alpha']}")
    if (folder / DIFFUSERS_LORA).exists():
        weights, kind = folder / DIFFUSERS_LORA, "diffusers"
    elif (folder / PEFT_WEIGHTS).exists() and (folder / PEFT_CONFIG).exists():
        weights, kind = folder / PEFT_WEIGHTS, "peft"
    else:
        raise MergeError(f"LoRA folder {spec!r} has {LORA_CONFIG} but no {DIFFUSERS_LORA} and no "
                         f"{PEFT_CONFIG} + {PEFT_WEIGHTS}.")
    lora = LoraSpec(folder, str(cfg["base"]), cfg.get("base_subfolder", "unet"), int(cfg["rank"]),
                    float(cfg["alpha"]), tuple(cfg["target_modules"]), weights, kind)
    if kind == "peft":
        _check_peft_config(lora)
    return lora


def _check_peft_config(lora: LoraSpec) -> None:
    """A peft adapter carries its own r / alpha: they must agree with lora_config.json."""
    pc = json.loads((lora.folder / PEFT_CONFIG).read_text())
    theirs = {"rank": pc.get("r"), "alpha": pc.get("lora_alpha"), "target_modules": pc.get("target_modules")}
    if theirs["rank"] is None or theirs["alpha"] is None:
        raise MergeError(f"{lora.folder / PEFT_CONFIG} lacks r or lora_alpha; is this a LoRA adapter?")
    if pc.get("use_dora") or pc.get("use_rslora") or pc.get("rank_pattern") or pc.get("alpha_pattern"):
        raise MergeError(f"{lora.folder / PEFT_CONFIG}: DoRA, rsLoRA and per-module rank/alpha patterns are "
                         f"not supported; export a plain LoRA.")
    ours = {"rank": lora.rank, "alpha": lora.alpha, "target_modules": lora.target_modules}
    targets = theirs["target_modules"]
    if theirs["rank"] != ours["rank"] or float(theirs["alpha"]) != ours["alpha"] or (
            isinstance(targets, list) and sorted(targets) != sorted(ours["target_modules"])):
        raise MergeError(f"{lora.folder}: {PEFT_CONFIG} says {theirs} but {LORA_CONFIG} says {ours}; make them agree.")


def _unet_source(spec: str) -> tuple[str, str | None, LoraSpec | None]:
    """(UNet spec, subfolder, LoRA or None) for a merge input."""
    lora = read_lora(spec)
    if lora is not None:
        if read_lora(lora.base) is not None:
            raise MergeError(f"LoRA {spec!r} names another LoRA {lora.base!r} as base; its base must be a full UNet.")
        return lora.base, lora.base_subfolder, lora
    return spec, "unet", None


def unet_config(spec: str) -> dict:
    """The UNet config a merge input will have (a LoRA input: its base's config), without loading weights."""
    unet_spec, subfolder, _ = _unet_source(spec)
    return zoo.load_unet_config(unet_spec, subfolder=subfolder)


def _normalised(config: dict) -> dict:
    """Config with the constructor's defaults filled in and JSON lists as tuples, minus bookkeeping keys."""
    from diffusers import UNet2DConditionModel

    params = inspect.signature(UNet2DConditionModel.__init__).parameters
    full = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    full.update({k: v for k, v in config.items() if not k.startswith("_")})

    def norm(v):
        return tuple(norm(x) for x in v) if isinstance(v, (list, tuple)) else v
    return {k: norm(v) for k, v in full.items()}


def check_compatible(spec_a: str, spec_b: str, lam: float) -> tuple[dict, dict]:
    """Raise :class:`MergeError` unless λ ∈ [0, 1] and both inputs are the same UNet architecture."""
    if not isinstance(lam, (int, float)) or isinstance(lam, bool) or not 0.0 <= float(lam) <= 1.0:
        raise MergeError(f"merge weight λ must be a number in [0, 1] (θ = λ·A + (1−λ)·B; λ=1 gives "
                         f"A = {spec_a!r}, λ=0 gives B = {spec_b!r}); got {lam!r}.")
    cfg_a, cfg_b = unet_config(spec_a), unet_config(spec_b)
    for spec, cfg in ((spec_a, cfg_a), (spec_b, cfg_b)):
        cls = cfg.get("_class_name", "UNet2DConditionModel")
        if cls != "UNet2DConditionModel":
            raise MergeError(f"{spec!r} is a {cls}, not a UNet2DConditionModel; give a UNet folder or pipeline.")
    na, nb = _normalised(cfg_a), _normalised(cfg_b)
    diff = {k: (na.get(k), nb.get(k)) for k in sorted(set(na) | set(nb)) if na.get(k) != nb.get(k)}
    if diff:
        lines = "; ".join(f"{k}: A={a!r} B={b!r}" for k, (a, b) in list(diff.items())[:8])
        raise MergeError(f"cannot merge A={spec_a!r} and B={spec_b!r}: different UNet architectures ({lines}"
                         f"{'; ...' if len(diff) > 8 else ''}). Merge only students fine-tuned from the same base "
                         f"UNet (SBv2: both initialised from SD-Turbo).")
    return cfg_a, cfg_b


def _lora_state_dict(lora: LoraSpec) -> dict[str, torch.Tensor]:
    """LoRA tensors keyed relative to the UNet, in peft naming (``<module>.lora_A.weight``)."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from safetensors.torch import load_file

    sd = load_file(str(lora.weights))
    if lora.kind == "peft":
        sd = {k.removeprefix("base_model.model."): v for k, v in sd.items()}
    else:
        foreign = sorted({k.split(".")[0] for k in sd if k.startswith(("text_encoder", "te_", "lora_te"))})
        if foreign:
            raise MergeError(f"{lora.weights} also holds text-encoder LoRA weights ({foreign}); merge only "
                             f"handles the UNet. Export the UNet LoRA alone.")
        if sd and all(k.startswith("unet.") for k in sd):
            sd = {k.removeprefix("unet."): v for k, v in sd.items()}
        sd = convert_unet_state_dict_to_peft(sd)
    if not sd:
        raise MergeError(f"{lora.weights} holds no LoRA tensors.")
    ranks = {v.shape[0] for k, v in sd.items() if ".lora_A." in k}
    if ranks != {lora.rank}:
        raise MergeError(f"{lora.weights}: LoRA ranks {sorted(ranks)} in the weights, but {LORA_CONFIG} says "
                         f"rank {lora.rank}.")
    return sd


def fuse_lora(unet, lora: LoraSpec):
    """Fuse ``lora`` into ``unet`` in place: W ← W + (alpha / rank)·B@A; the UNet keeps its plain layout."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict

    sd = _lora_state_dict(lora)
    unet.add_adapter(LoraConfig(r=lora.rank, lora_alpha=lora.alpha, target_modules=list(lora.target_modules),
                                init_lora_weights=False), adapter_name=ADAPTER)
    result = set_peft_model_state_dict(unet, sd, adapter_name=ADAPTER)
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    missing = [k for k in (getattr(result, "missing_keys", []) or []) if f".{ADAPTER}." in k and "lora_" in k]
    if unexpected or missing:
        raise MergeError(f"LoRA {lora.folder} does not fit base {lora.base!r} with target_modules "
                         f"{list(lora.target_modules)}: {len(unexpected)} unexpected keys (e.g. {unexpected[:2]}), "
                         f"{len(missing)} LoRA weights not in the file (e.g. {missing[:2]}). Check base and "
                         f"target_modules in {LORA_CONFIG}.")
    unet.fuse_lora(lora_scale=1.0, safe_fusing=True, adapter_names=[ADAPTER])
    unet.unload_lora()
    return unet


def load_input(spec: str, dtype: torch.dtype = torch.float32):
    """The UNet a merge input stands for (a LoRA input: fused into its base), in ``dtype``."""
    unet_spec, subfolder, lora = _unet_source(spec)
    unet = zoo.load_unet(unet_spec, subfolder=subfolder, torch_dtype=dtype)
    if lora is not None:
        fuse_lora(unet, lora)
    return unet.to(dtype)


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of tensor names, dtypes, shapes and bytes: the identity of the weights, whatever the files."""
    h = hashlib.sha256()
    for k in sorted(state):
        t = state[k].detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def interpolate(state_a: dict[str, torch.Tensor], state_b: dict[str, torch.Tensor], lam: float,
                names: tuple[str, str] = ("A", "B")) -> dict[str, torch.Tensor]:
    """λ·a + (1−λ)·b per tensor, in float64, cast back to a's dtype (λ = 1 / 0 return a / b exactly)."""
    if set(state_a) != set(state_b):
        only_a, only_b = sorted(set(state_a) - set(state_b)), sorted(set(state_b) - set(state_a))
        raise MergeError(f"{names[0]} and {names[1]} have different tensors: only in {names[0]} {only_a[:3]}, "
                         f"only in {names[1]} {only_b[:3]}")
    out = {}
    for k, a in state_a.items():
        b = state_b[k]
        if a.shape != b.shape:
            raise MergeError(f"tensor {k}: shape {tuple(a.shape)} in {names[0]} but {tuple(b.shape)} in {names[1]}")
        if not a.is_floating_point():
            if not torch.equal(a, b):
                raise MergeError(f"non-float tensor {k} differs between {names[0]} and {names[1]}")
            out[k] = a.clone()
            continue
        mixed = lam * a.double() + (1.0 - lam) * b.double()
        out[k] = mixed.to(a.dtype)
    return out


def _input_record(spec: str, state: dict[str, torch.Tensor]) -> dict:
    unet_spec, subfolder, lora = _unet_source(spec)
    ref = zoo.resolve(unet_spec)
    base = {"spec": unet_spec, "kind": ref.kind, "location": ref.location, "revision": ref.revision}
    if ref.kind == "local":  # hash the UNet folder actually used, not a whole pipeline
        candidates = ([ref.path / subfolder] if subfolder else []) + [ref.path]
        folder = next(f for f in candidates if (f / "config.json").exists())
        base.update(folder=str(folder), sha256=sha256_tree(folder))
    rec = {"spec": spec, "unet": base, "weights_sha256": state_sha256(state)}
    if lora is not None:
        rec["lora"] = {"folder": str(lora.folder), "kind": lora.kind, "file_sha256": sha256_file(lora.weights),
                       "rank": lora.rank, "alpha": lora.alpha, "scale": lora.scale,
                       "target_modules": list(lora.target_modules)}
    return rec


def merge_unets(spec_a: str, spec_b: str, lam: float, out: str | Path, dtype: str = "float32") -> Path:
    """Write the UNet λ·A + (1−λ)·B to ``out`` (a diffusers UNet folder) with ``merge.json``; return ``out``."""
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    if torch_dtype is None:
        raise MergeError(f"dtype {dtype!r} not in float32, float16, bfloat16")
    check_compatible(spec_a, spec_b, lam)
    lam = float(lam)
    unet = load_input(spec_a)
    state_a = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    state_b = {k: v.detach() for k, v in load_input(spec_b).state_dict().items()}
    records = {"a": _input_record(spec_a, state_a), "b": _input_record(spec_b, state_b)}
    merged = interpolate(state_a, state_b, lam, names=(spec_a, spec_b))
    del state_b
    unet.load_state_dict(merged, strict=True)
    unet.to(torch_dtype)
    with atomic_dir(out) as tmp:
        unet.save_pretrained(tmp, safe_serialization=True)
        write_json(tmp / "merge.json", record(
            stage="merge", formula="theta = lambda * theta_A + (1 - lambda) * theta_B", **{"lambda": lam},
            inputs=records, dtype=dtype, weights_sha256=state_sha256(unet.state_dict()),
            lora_fusion="W + (alpha / rank) * B @ A, before interpolation"))
    return Path(out)
