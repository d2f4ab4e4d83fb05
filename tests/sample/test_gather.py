"""``sb2bench gather`` runs without torch: a gather job per sampled system costs a light process, not the ~5 s
of importing the model stack (sb2bench.sample.gather uses the standard library only)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = {"torch", "numpy", "PIL", "pandas", "diffusers", "transformers", "scipy", "matplotlib"}


def _shard(folder: Path, indices: list[int], dtype: str = "float32") -> Path:
    """A shard folder as sample_shard writes one (the PNG bytes are only moved, never decoded)."""
    folder.mkdir(parents=True)
    for i in indices:
        (folder / f"{i:06d}.png").write_bytes(f"png {i}".encode())
    (folder / "shard.json").write_text(json.dumps({"system": {"name": "s", "seed": 0}, "provenance": {"unet": "x"},
                                                   "runtime": {"dtype": dtype, "device": "cpu"}}))
    return folder


def _gather(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The console entry point in a fresh interpreter, with -X importtime listing every module it imports."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SB2BENCH_WARM": "0"}
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "sb2bench", "gather", *args],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def _imported(stderr: str) -> set[str]:
    names = {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}
    return {n.split(".")[0] for n in names}


def test_gather_cli_merges_shards_without_importing_torch(tmp_path):
    shards = [_shard(tmp_path / "s0", [0, 2]), _shard(tmp_path / "s1", [1, 3])]
    run = _gather(tmp_path, "--shards", *map(str, shards), "--out", str(tmp_path / "images"), "--expected", "4")
    assert run.returncode == 0, run.stderr[-2000:]
    imported = _imported(run.stderr)
    assert "sb2bench" in imported and not HEAVY & imported, sorted(HEAVY & imported)
    out = tmp_path / "images"
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i:06d}.png" for i in range(4)]
    assert (out / "000003.png").read_bytes() == b"png 3"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_images"] == 4 and manifest["n_shards"] == 2 and manifest["system"]["name"] == "s"
    assert len(manifest["images_sha256"]) == 64


def test_gather_cli_errors_name_the_problem_and_write_nothing(tmp_path):
    shards = [_shard(tmp_path / "s0", [0]), _shard(tmp_path / "s1", [1], dtype="float16")]
    run = _gather(tmp_path, "--shards", *map(str, shards), "--out", str(tmp_path / "images"))
    assert run.returncode == 2 and "different precisions" in run.stderr
    run = _gather(tmp_path, "--shards", str(shards[0]), "--out", str(tmp_path / "images"), "--expected", "2")
    assert run.returncode == 2 and "gathered 1 images from 1 shards, expected 2" in run.stderr
    assert not (tmp_path / "images").exists() and not list(tmp_path.glob(".images*"))
