"""The feature network of FID and precision/recall: clean-fid's Inception or the toy Inception.

clean-fid's Inception (``inception-2015-12-05.pt``, a TorchScript file with a ``layers`` module)
is loaded from a local path through clean-fid's own ``InceptionV3W`` wrapper, never downloaded:
it takes [0, 255] RGB images that clean-fid's "clean" resize brought to 299 px and returns the
2048-d pool features. The toy Inception is a TorchScript module with the same [0, 255] interface
that resizes internally, so its images are read at their native size.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from sb2bench.models import zoo

CLEANFID_FILE = "inception-2015-12-05.pt"


@dataclass
class FeatureNet:
    extractor: Callable[[torch.Tensor], torch.Tensor]
    native_size: bool  # True: no resize to 299 before the network
    description: str


def _torchscript_path(spec: str) -> Path:
    path = zoo.resolve(spec).path if zoo.resolve(spec).kind == "local" else None
    if path is None:
        raise zoo.ModelNotFoundError(f"feature network {spec!r} must be a local file or folder: download "
                                     f"clean-fid's {CLEANFID_FILE} on a machine with internet and give its path")
    if path.is_dir():
        files = sorted(path.glob("*.pt"))
        if len(files) != 1:
            raise zoo.ModelNotFoundError(f"{spec!r}: expected exactly one .pt file in {path}, found {len(files)}")
        path = files[0]
    return path


def load_feature_net(spec: str, device: str = "cpu") -> FeatureNet:
    path = _torchscript_path(spec)
    base = zoo.load_torchscript(str(path))
    if not hasattr(base, "layers"):
        net = base.to(device)
        return FeatureNet(net, True, f"TorchScript feature network {path.name} at native size")
    if path.name != CLEANFID_FILE:
        raise zoo.ModelNotFoundError(f"{spec!r} looks like clean-fid's Inception but is named {path.name}; "
                                     f"rename it to {CLEANFID_FILE} (clean-fid loads it by that name)")
    from cleanfid.inception_torchscript import InceptionV3W

    net = InceptionV3W(str(path.parent), download=False).to(device).eval()
    return FeatureNet(net, False, f"clean-fid InceptionV3W({path}), pool3 2048-d, 299 px clean resize")
