"""The benches' score cache (bench/_toy_runs.py) is keyed by content: a system whose weights changed under the same
tag (a retrained toy hub, a rewritten checkpoint) is resampled, never served another model's images."""
import sys
from pathlib import Path

from safetensors.torch import save_file
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their helper _toy_runs by name
import _toy_runs as toy  # noqa: E402
from sb2bench.sample.generate import SystemSpec  # noqa: E402


def _unet(folder: Path, value: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.full((2,), value)}, str(folder / "diffusion_pytorch_model.safetensors"))
    return folder


def test_spec_key_follows_weights_and_sampling_fields(tmp_path):
    unet = _unet(tmp_path / "u", 1.0)
    spec = SystemSpec(name="a", pipeline="toy:sd-toy-turbo", kind="onestep", unet=str(unet), steps=1, cfg=1.0)
    key = toy.spec_key(spec)
    assert toy.spec_key(SystemSpec(**{**spec.__dict__, "name": "b", "label": "B"})) == key  # names do not count
    assert toy.spec_key(SystemSpec(**{**spec.__dict__, "cfg": 2.0})) != key
    _unet(tmp_path / "u", 2.0)  # same path, new weights
    assert toy.spec_key(spec) != key


def test_a_stale_eval_folder_is_emptied(tmp_path):
    out = tmp_path / "eval" / "turbo"
    (out / "images").mkdir(parents=True)
    (out / "spec_key").write_text("old")
    (out / "images" / "0.png").write_bytes(b"x")
    assert toy.fresh_eval_dir(out, "old") == out and (out / "images" / "0.png").exists()  # same key: kept
    toy.fresh_eval_dir(out, "new")
    assert not out.exists()
    (out / "images").mkdir(parents=True)  # a folder from before the key existed is stale too
    toy.fresh_eval_dir(out, "new")
    assert not out.exists()
