"""One resolver for every model the suite uses, and loaders that work whatever the origin.

A model *spec* is one of
  ``toy:NAME``            a folder or file of the toy hub (shipped with the package, or the
                          folder named by ``SB2BENCH_TOY_HUB`` when the hub was retrained);
  a local path            a folder (diffusers / transformers / open_clip layout) or a file;
  ``org/name[@revision]`` a Hugging Face hub id, from the local cache when offline;
  ``ARCH:TAG``            (open_clip only) an open_clip architecture and pretrained tag or
                          checkpoint file, e.g. ``ViT-g-14:laion2b_s12b_b42k``.
Every loader raises :class:`ModelNotFoundError` naming the spec and how to provide it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PACKAGE_TOY_HUB = Path(__file__).parents[1] / "toyworld" / "hub"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?$")


class ModelNotFoundError(FileNotFoundError):
    """A model spec that cannot be loaded, with the fix in the message."""


class CorruptModelError(ValueError):
    """A weights file that exists but cannot be read."""


@dataclass(frozen=True)
class ModelRef:
    spec: str
    kind: str  # "local" | "hub"
    location: str  # path for local, repo id for hub
    revision: str | None = None

    @property
    def path(self) -> Path:
        if self.kind != "local":
            raise ValueError(f"{self.spec} is a hub id, not a local path")
        return Path(self.location)


def toy_hub_dir() -> Path:
    return Path(os.environ.get("SB2BENCH_TOY_HUB") or PACKAGE_TOY_HUB)


def resolve(spec: str) -> ModelRef:
    """Turn a spec into a local path or a hub id (without loading anything)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ModelNotFoundError(f"empty model spec {spec!r}: give toy:NAME, a local path or org/name")
    spec = spec.strip()
    if spec.startswith("toy:"):
        path = toy_hub_dir() / spec[4:]
        if not path.exists():
            raise ModelNotFoundError(
                f"toy model {spec!r} not found at {path}. The shipped toy hub lives in "
                f"{PACKAGE_TOY_HUB}; if you retrained it, set SB2BENCH_TOY_HUB to its folder, or "
                f"rebuild it with `snakemake --cores all ship_toy_hub --config toy='{{hub: retrain}}'`.")
        return ModelRef(spec, "local", str(path))
    expanded = Path(os.path.expanduser(spec))
    if expanded.exists():
        return ModelRef(spec, "local", str(expanded.resolve()))
    if spec.startswith(("/", ".", "~")) or not HUB_ID.match(spec):
        raise ModelNotFoundError(f"model path {spec!r} does not exist. Give an existing folder or file, "
                                 f"a toy:NAME model or a hub id like org/name[@revision].")
    repo, _, revision = spec.partition("@")
    return ModelRef(spec, "hub", repo, revision or None)


def _offline_hint(ref: ModelRef, what: str) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return (f"cannot load {what} of {ref.spec!r} from the Hugging Face hub"
            f"{' (HF_HUB_OFFLINE=1)' if offline else ''}. Either download it on a machine with internet "
            f"(`huggingface-cli download {ref.location}`) and copy the cache (HF_HOME) here, or "
            f"download the folder and give its local path instead of the hub id.")


def _local_component(ref: ModelRef, subfolder: str | None, marker: str) -> Path:
    """The folder holding ``marker`` (e.g. config.json): ``root/subfolder`` or the root itself."""
    root = ref.path
    candidates = [root / subfolder, root] if subfolder else [root]
    for c in candidates:
        if (c / marker).exists():
            return c
    where = " or ".join(str(c / marker) for c in candidates)
    raise ModelNotFoundError(f"{ref.spec!r}: no {marker} at {where}. Is this the right folder for the "
                             f"{subfolder or 'model'}?")


def _check_weights(folder: Path, spec: str) -> None:
    """Open every safetensors file header so a corrupt file fails with its name."""
    from safetensors import safe_open

    for f in folder.glob("*.safetensors"):
        try:
            with safe_open(str(f), framework="pt") as st:
                keys = list(st.keys())
                if keys:
                    st.get_slice(keys[-1])
        except Exception as exc:  # safetensors raises its own error types
            raise CorruptModelError(f"{spec!r}: weights file {f} is corrupt or truncated ({exc}). "
                                    f"Re-download or re-create it.") from exc


def _from_pretrained(cls, spec: str, subfolder: str | None, marker: str = "config.json", **kw):
    ref = resolve(spec)
    if ref.kind == "local":
        folder = _local_component(ref, subfolder, marker)
        _check_weights(folder, spec)
        return cls.from_pretrained(str(folder), local_files_only=True, **kw)
    try:
        return cls.from_pretrained(ref.location, subfolder=subfolder, revision=ref.revision, **kw)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(_offline_hint(ref, subfolder or cls.__name__) + f"\nCause: {exc}") from exc


def load_unet(spec: str, subfolder: str | None = "unet", **kw):
    from diffusers import UNet2DConditionModel

    return _from_pretrained(UNet2DConditionModel, spec, subfolder, **kw)


def load_unet_config(spec: str, subfolder: str | None = "unet") -> dict:
    """The UNet's config.json (to build a randomly initialised UNet of the same architecture)."""
    from diffusers import UNet2DConditionModel

    ref = resolve(spec)
    if ref.kind == "local":
        return UNet2DConditionModel.load_config(str(_local_component(ref, subfolder, "config.json")))
    try:
        return UNet2DConditionModel.load_config(ref.location, subfolder=subfolder, revision=ref.revision)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(_offline_hint(ref, "unet config") + f"\nCause: {exc}") from exc


def load_vae(spec: str, subfolder: str | None = "vae", **kw):
    from diffusers import AutoencoderKL

    return _from_pretrained(AutoencoderKL, spec, subfolder, **kw)


def load_tiny_vae(spec: str, subfolder: str | None = None, **kw):
    from diffusers import AutoencoderTiny

    return _from_pretrained(AutoencoderTiny, spec, subfolder, **kw)


def load_text_encoder(spec: str, subfolder: str | None = "text_encoder", **kw):
    from transformers import CLIPTextModel

    return _from_pretrained(CLIPTextModel, spec, subfolder, **kw)


SCHEDULERS = {"ddim": "DDIMScheduler", "ddpm": "DDPMScheduler", "euler": "EulerDiscreteScheduler",
              "euler_a": "EulerAncestralDiscreteScheduler", "dpmpp": "DPMSolverMultistepScheduler",
              "pndm": "PNDMScheduler", "lcm": "LCMScheduler"}


def load_scheduler(spec: str, name: str | None = None, subfolder: str | None = "scheduler"):
    """The repo's scheduler, or scheduler ``name`` (see SCHEDULERS) built from its config."""
    import diffusers

    ref = resolve(spec)
    if ref.kind == "local":
        folder = _local_component(ref, subfolder, "scheduler_config.json")
        config = diffusers.DDPMScheduler.load_config(str(folder))
    else:
        try:
            config = diffusers.DDPMScheduler.load_config(ref.location, subfolder=subfolder,
                                                         revision=ref.revision)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(_offline_hint(ref, "scheduler") + f"\nCause: {exc}") from exc
    cls_name = SCHEDULERS.get(name, None) if name else config.get("_class_name", "DDPMScheduler")
    if cls_name is None:
        raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)}")
    return getattr(diffusers, cls_name).from_config(config)


def check_tokenizer(tok, spec: str):
    """transformers 5 silently returns a 2-token CLIP tokenizer when files are missing."""
    n = len(tok)
    probe = tok("a red circle").input_ids
    if n <= 2 or tok.model_max_length > 100_000 or len(set(probe)) < 3:
        raise ModelNotFoundError(
            f"tokenizer of {spec!r} is degenerate ({n} tokens, model_max_length={tok.model_max_length}): "
            f"its vocabulary files are missing. Provide a folder with tokenizer.json or vocab.json + "
            f"merges.txt (SD 2.1: the 'tokenizer' subfolder of the pipeline repo).")
    return tok


def load_tokenizer(spec: str, subfolder: str | None = "tokenizer"):
    from transformers import CLIPTokenizer

    ref = resolve(spec)
    if ref.kind == "local":
        root = ref.path
        folders = [root / subfolder, root] if subfolder else [root]
        folder = next((f for f in folders if (f / "tokenizer.json").exists() or (f / "vocab.json").exists()),
                      None)
        if folder is None:
            raise ModelNotFoundError(f"{spec!r}: no tokenizer.json or vocab.json in "
                                     f"{' or '.join(map(str, folders))}.")
        tok = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    else:
        try:
            tok = CLIPTokenizer.from_pretrained(ref.location, subfolder=subfolder, revision=ref.revision)
            return check_tokenizer(tok, spec)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(_offline_hint(ref, "tokenizer") + f"\nCause: {exc}") from exc
    return check_tokenizer(tok, spec)


@dataclass
class OpenClip:
    model: object
    preprocess: object
    tokenizer: object
    spec: str


def load_open_clip(spec: str, device: str = "cpu") -> OpenClip:
    """open_clip model from a local open_clip folder, a toy name, ``ARCH:TAG`` or ``ARCH:/file``."""
    import open_clip

    if spec.startswith("toy:") or Path(os.path.expanduser(spec)).is_dir():
        folder = resolve(spec).path
        if not (folder / "open_clip_config.json").exists():
            raise ModelNotFoundError(f"{spec!r}: {folder} has no open_clip_config.json")
        _check_weights(folder, spec)
        name = f"local-dir:{folder}"
        model, _, preprocess = open_clip.create_model_and_transforms(name, device=device)
        tokenizer = open_clip.get_tokenizer(name)
    else:
        arch, sep, pretrained = spec.partition(":")
        if not sep or arch not in open_clip.list_models():
            raise ModelNotFoundError(f"open_clip spec {spec!r} must be a folder, toy:NAME or ARCH:TAG with ARCH "
                                     f"an open_clip architecture (e.g. ViT-g-14:laion2b_s12b_b42k).")
        if pretrained.startswith(("/", ".", "~")) and not Path(os.path.expanduser(pretrained)).is_file():
            raise ModelNotFoundError(f"open_clip checkpoint {pretrained!r} of {spec!r} does not exist.")
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=os.path.expanduser(pretrained), device=device)
        except RuntimeError as exc:
            raise ModelNotFoundError(
                f"cannot load open_clip {spec!r}: {exc}. Offline, download the checkpoint elsewhere and "
                f"give ARCH:/path/to/open_clip_pytorch_model.bin.") from exc
        tokenizer = open_clip.get_tokenizer(arch)
    model.eval().requires_grad_(False)
    return OpenClip(model, preprocess, tokenizer, spec)


def _local_only(spec: str, what: str) -> Path:
    ref = resolve(spec)
    if ref.kind != "local":
        raise ModelNotFoundError(f"{spec!r}: the {what} must be a local file or folder or toy:NAME; "
                                 f"download it and give its path.")
    return ref.path


def load_torchscript(spec: str):
    """A TorchScript feature network (clean-fid's Inception file or the toy Inception)."""
    import torch

    path = _local_only(spec, "TorchScript feature network")
    if path.is_dir():
        files = sorted(path.glob("*.pt"))
        if len(files) != 1:
            raise ModelNotFoundError(f"{spec!r}: expected exactly one .pt file in {path}, found {len(files)}")
        path = files[0]
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise CorruptModelError(f"{spec!r}: {path} is not a loadable TorchScript file ({exc}).") from exc


def load_classifier(spec: str):
    from sb2bench.toyworld.train_attribute_nets import load_classifier as _load

    path = _local_only(spec, "attribute classifier")
    _local_component(resolve(spec), None, "config.json")
    _check_weights(path, spec)
    return _load(path)


def describe(spec: str) -> dict:
    """Provenance record of a spec: where it resolved and a content hash when local."""
    from sb2bench._infra.hashing import sha256_tree

    ref = resolve(spec)
    out = {"spec": spec, "kind": ref.kind, "location": ref.location, "revision": ref.revision}
    if ref.kind == "local":
        out["sha256"] = sha256_tree(ref.path)
    return out

