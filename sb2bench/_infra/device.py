"""Device and dtype of a job: the one place that turns "auto" into a device and checks the request.

Sampling, evaluation, timing, the regularisation pairs and training all accept ``device: auto | cpu |
cuda``; resolving it here keeps "auto" meaning the same thing everywhere (the GPU when torch sees one)
and a CUDA request on a machine without one an error that names the config key, before any model loads.
"""
from __future__ import annotations

import torch

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def resolve_device(device: str, key: str = "device") -> str:
    """"cuda" or "cpu" for ``device`` (auto = the GPU when torch sees one); ``key`` names it in errors."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{key} is 'cuda' but torch sees no GPU; use 'auto' or 'cpu'")
    return device


def resolve_dtype(dtype: str, device: str, key: str = "dtype") -> torch.dtype:
    """The torch dtype of ``dtype`` on the resolved ``device``: auto = float16 on CUDA (as the paper times
    its systems), float32 on the CPU; half precision only on CUDA (CPU kernels are slow or missing)."""
    if dtype == "auto":
        dtype = "float16" if device == "cuda" else "float32"
    if dtype not in DTYPES:
        raise ValueError(f"{key} {dtype!r}: choose one of {sorted(DTYPES)}")
    if device == "cpu" and dtype != "float32":
        raise ValueError(f"{key} {dtype!r} needs a GPU; use float32 on the CPU")
    return DTYPES[dtype]


def resolve_runtime(device: str = "auto", dtype: str = "float32",
                    section: str = "teacher_sampling") -> tuple[str, torch.dtype]:
    """(device, dtype) of a job whose config keys are ``{section}.device`` and ``{section}.dtype``."""
    dev = resolve_device(device, f"{section}.device")
    return dev, resolve_dtype(dtype, dev, f"{section}.dtype")
