"""Make ``import torchvision`` work on CPU-only torch.

The only torchvision wheel matching torch 2.13 is a CUDA build; on CPU torch its
``_C.so`` cannot load and torchvision's fake-op registrations then fail, which breaks
transformers, diffusers, open_clip and clean-fid at import time. A meta-path hook runs
before the first torchvision import: it loads the real extension when it can (CUDA torch:
the hook is a no-op) and otherwise defines the two op schemas torchvision registers fakes
for. Set ``SB2BENCH_NO_TV_SHIM=1`` to disable it.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys

_LIBRARY = None  # keeps the torch.library.Library alive


class _TorchvisionShim(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001
        if fullname != "torchvision":
            return None
        sys.meta_path.remove(self)
        try:
            _define_missing_ops()
        except Exception as exc:  # never block the import itself
            print(f"[sb2bench] torchvision shim warning: {exc!r}", file=sys.stderr)
        return None  # let the normal finders import torchvision


def extension_loads() -> bool:
    """True when torchvision's compiled extension loads against this torch."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return False
    import torch

    so = os.path.join(os.path.dirname(spec.origin), "_C.so")
    if not os.path.exists(so):
        return False
    try:
        torch.ops.load_library(so)
        return True
    except Exception:
        return False


def _define_missing_ops() -> None:
    global _LIBRARY
    if extension_loads():
        return
    import torch

    _LIBRARY = torch.library.Library("torchvision", "DEF")
    _LIBRARY.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _LIBRARY.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")


def install() -> None:
    """Install the hook unless disabled or torchvision is already imported."""
    if os.environ.get("SB2BENCH_NO_TV_SHIM") == "1" or "torchvision" in sys.modules:
        return
    if not any(isinstance(f, _TorchvisionShim) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionShim())
