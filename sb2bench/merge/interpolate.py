"""Weight interpolation of two students, θ = λ·θ_A + (1 − λ)·θ_B (SBv2 Eq. 6), LoRA fused first.

SBv2's final model merges a fully fine-tuned student (A) with a LoRA student (B) at λ = 0.5, so a
LoRA input is first fused into its base UNet (W + (alpha / rank)·B@A, ``sb2bench.models.lora``). Inputs
are zoo specs (hub id, local folder, ``toy:NAME``) of a full UNet, or local LoRA folders (layout in
``sb2bench.models.lora``). Architectures and λ are checked from the configs *before* any weights load.
The result is a diffusers UNet folder (``save_pretrained``, safetensors) written atomically, with
``merge.json`` recording the inputs' content hashes, λ and package versions; a sweep (``merge_sweep``) writes
one such folder per λ of a grid from a single load of A and B, the whole grid in one atomic rename.
"""
from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import torch

from sb2bench.models import lora, zoo
from sb2bench._infra.atomic import atomic_dir, write_json
from sb2bench._infra.device import DTYPES
from sb2bench._infra.hashing import sha256_file, sha256_tree
from sb2bench._infra.provenance import record
from sb2bench.plan.paths import sweep_lambda_dir


class MergeError(ValueError):
    """Inputs that cannot be merged; the message names them and the fix."""


def unet_config(spec: str) -> dict:
    """The UNet config a merge input will have (a LoRA input: its base's config), without loading weights."""
    unet_spec, subfolder, _ = lora.unet_source(spec)
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
    unet_spec, subfolder, fused = lora.unet_source(spec)
    ref = zoo.resolve(unet_spec)
    base = {"spec": unet_spec, "kind": ref.kind, "location": ref.location, "revision": ref.revision}
    if ref.kind == "local":  # hash the UNet folder actually used, not a whole pipeline
        candidates = ([ref.path / subfolder] if subfolder else []) + [ref.path]
        folder = next(f for f in candidates if (f / "config.json").exists())
        base.update(folder=str(folder), sha256=sha256_tree(folder))
    rec = {"spec": spec, "unet": base, "weights_sha256": state_sha256(state)}
    if fused is not None:
        rec["lora"] = {"folder": str(fused.folder), "kind": fused.kind, "file_sha256": sha256_file(fused.weights),
                       "rank": fused.rank, "alpha": fused.alpha, "scale": fused.scale,
                       "target_modules": list(fused.target_modules)}
    return rec


def _load_inputs(spec_a: str, spec_b: str) -> tuple[torch.nn.Module, dict, dict, dict]:
    """A's UNet (the module the merged weights are loaded into), both state dicts and their records:
    each input is read, and a LoRA input fused, once whatever the number of λ."""
    unet = lora.load_fused_unet(spec_a)
    state_a = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    state_b = {k: v.detach() for k, v in lora.load_fused_unet(spec_b).state_dict().items()}
    return unet, state_a, state_b, {"a": _input_record(spec_a, state_a), "b": _input_record(spec_b, state_b)}


def _save_merged(unet: torch.nn.Module, state_a: dict, state_b: dict, lam: float, names: tuple[str, str],
                 records: dict, dtype: str, folder: Path) -> None:
    """Write λ·A + (1−λ)·B into ``folder`` (save_pretrained and merge.json); ``unet`` is reused."""
    merged = interpolate(state_a, state_b, lam, names=names)
    unet.load_state_dict(merged, strict=True)
    del merged
    unet.to(DTYPES[dtype])
    unet.save_pretrained(folder, safe_serialization=True)
    write_json(Path(folder) / "merge.json", record(
        stage="merge", formula="theta = lambda * theta_A + (1 - lambda) * theta_B", **{"lambda": lam},
        inputs=records, dtype=dtype, weights_sha256=state_sha256(unet.state_dict()),
        lora_fusion="W + (alpha / rank) * B @ A, before interpolation"))


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise MergeError(f"dtype {dtype!r} not in float32, float16, bfloat16")


def merge_unets(spec_a: str, spec_b: str, lam: float, out: str | Path, dtype: str = "float32") -> Path:
    """Write the UNet λ·A + (1−λ)·B to ``out`` (a diffusers UNet folder) with ``merge.json``; return ``out``."""
    _check_dtype(dtype)
    check_compatible(spec_a, spec_b, lam)
    unet, state_a, state_b, records = _load_inputs(spec_a, spec_b)
    with atomic_dir(out) as tmp:
        _save_merged(unet, state_a, state_b, float(lam), (spec_a, spec_b), records, dtype, tmp)
    return Path(out)


def merge_sweep(spec_a: str, spec_b: str, lambdas: list[float], out: str | Path, dtype: str = "float32") -> Path:
    """Write one merged UNet per λ to ``out/lambda-<λ>/`` (``sb2bench.plan.paths.sweep_lambda_dir``), A and B
    loaded once. Every λ and both architectures are checked before any weights load, and the sweep folder
    appears whole or not at all, so a crash never leaves part of a grid that looks finished."""
    _check_dtype(dtype)
    if not lambdas:
        raise MergeError("a merge sweep needs at least one λ (config key merges[].lambdas)")
    folders = [Path(sweep_lambda_dir(str(out), lam)).name for lam in lambdas]
    if len(set(folders)) != len(folders):
        raise MergeError(f"λ values {list(lambdas)} name the same folder twice ({sorted(folders)}); list each once")
    for lam in lambdas:
        check_compatible(spec_a, spec_b, lam)
    unet, state_a, state_b, records = _load_inputs(spec_a, spec_b)
    with atomic_dir(out) as tmp:
        for lam, folder in zip(lambdas, folders):
            _save_merged(unet, state_a, state_b, float(lam), (spec_a, spec_b), records, dtype, tmp / folder)
    return Path(out)
