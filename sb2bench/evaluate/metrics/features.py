"""The feature network of FID and precision/recall: clean-fid's Inception or the toy Inception.

clean-fid's Inception (``inception-2015-12-05.pt``, a TorchScript file with a ``layers`` module)
is loaded from a local path through clean-fid's own ``InceptionV3W`` wrapper, never downloaded:
it takes [0, 255] RGB images that clean-fid's "clean" resize brought to 299 px and returns the
2048-d pool features (``CleanFidInception`` reads that width from the network's output rather than
from clean-fid's fixed ``view(bs, 2048)``, so a narrow test stand-in runs the same code). The toy
Inception is a TorchScript module with the same [0, 255] interface that resizes internally, so its
images are read at their native size.
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


class CleanFidInception(torch.nn.Module):
    """clean-fid's ``InceptionV3W`` (its loading and its input contract: [0, 255] RGB at 299 px, normalised
    as (x - 128) / 128) with the feature width taken from the network instead of fixed at 2048.

    Why: on the real file the output is bit-identical to ``InceptionV3W``'s 2048-d features
    (tests/evaluate/test_features.py checks it on a 2048-d stand-in), and a narrow stand-in keeps FID's
    d x d ``sqrtm`` cheap in the end-to-end tests while going through this same class."""

    def __init__(self, folder: Path):
        from cleanfid.inception_torchscript import InceptionV3W

        super().__init__()
        self.cleanfid = InceptionV3W(str(folder), download=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[2:]) != (299, 299):
            raise ValueError(f"clean-fid's Inception takes 299 x 299 images (clean-fid's resize), got "
                             f"{tuple(x.shape[2:])}")
        return self.cleanfid.layers((x - 128) / 128).flatten(1)


def load_feature_net(spec: str, device: str = "cpu") -> FeatureNet:
    path = _torchscript_path(spec)
    base = zoo.load_torchscript(str(path))
    if not hasattr(base, "layers"):
        net = base.to(device)
        return FeatureNet(net, True, f"TorchScript feature network {path.name} at native size")
    if path.name != CLEANFID_FILE:
        raise zoo.ModelNotFoundError(f"{spec!r} looks like clean-fid's Inception but is named {path.name}; "
                                     f"rename it to {CLEANFID_FILE} (clean-fid loads it by that name)")
    net = CleanFidInception(path.parent).to(device).eval()
    return FeatureNet(net, False, f"clean-fid InceptionV3W({path}), pool3 features (2048-d for the real file), "
                                  f"299 px clean resize")
