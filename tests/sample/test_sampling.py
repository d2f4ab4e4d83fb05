"""Generation: sharded == single process, per-index seeds, one-step formula, atomic shards."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sb2bench.data.prompts import PromptFileError, read_prompts, write_prompts
from sb2bench.sample.gather import gather_shards
from sb2bench.sample.generate import SystemSpec, generate_shard, initial_noise, latent_shape, load_system, \
    one_step_x0, sample_latents, shard_batches

CAPTIONS = ["a red circle", "a small blue square on the left", "a green triangle, photograph",
            "a yellow circle on a black background", "a large red square", "a blue triangle, anime style",
            "a green circle in the center"]


@pytest.fixture()
def prompts():
    return [{"index": i, "caption": c} for i, c in enumerate(CAPTIONS)]


def _pngs(folder: Path) -> dict[str, bytes]:
    return {p.name: np.asarray(Image.open(p)).tobytes() for p in sorted(folder.glob("*.png"))}


@pytest.mark.parametrize("kind", ["multistep", "onestep"])
def test_sharded_equals_single_process(tiny_pipeline_dir, prompts, tmp_path, kind):
    spec = SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), kind=kind, steps=3, cfg=3.0, seed=7)
    single = generate_shard(spec, prompts, tmp_path / "single", 0, 1, batch_size=2)
    shards = [generate_shard(spec, prompts, tmp_path / f"shard{k}", k, 3, batch_size=2) for k in range(3)]
    merged = gather_shards(shards, tmp_path / "merged", expected=len(prompts))
    a, b = _pngs(single), _pngs(merged)
    assert sorted(a) == [f"{i:06d}.png" for i in range(len(prompts))]
    assert a == b
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["n_images"] == len(prompts) and manifest["system"]["seed"] == 7
    assert len({v for v in a.values()}) > 1  # different prompts/seeds give different images


def test_seed_changes_images(tiny_pipeline_dir, prompts, tmp_path):
    base = dict(name="s", pipeline=str(tiny_pipeline_dir), steps=2, cfg=1.0)
    a = generate_shard(SystemSpec(**base, seed=0), prompts[:2], tmp_path / "a", batch_size=2)
    b = generate_shard(SystemSpec(**base, seed=1), prompts[:2], tmp_path / "b", batch_size=2)
    assert _pngs(a) != _pngs(b)


def test_noise_depends_only_on_seed_and_index():
    n1 = initial_noise([3, 4], (4, 8, 8), seed=5)
    n2 = initial_noise([9, 4], (4, 8, 8), seed=5)
    assert torch.equal(n1[1], n2[1]) and not torch.equal(n1[0], n2[0])


def test_explicit_start_noise_replaces_the_seeded_noise(tiny_pipeline_dir):
    """The turbo's mode-seeking pairs (toyworld/train_turbo.py) start the teacher from scaled noise: passing the
    seeded noise itself changes nothing, a scaled copy changes the latents."""
    system = load_system(SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), steps=2, cfg=3.0, seed=3))
    z = initial_noise([0, 1], latent_shape(system), 3)
    seeded = sample_latents(system, CAPTIONS[:2], [0, 1], 0)
    assert torch.equal(sample_latents(system, CAPTIONS[:2], [0, 1], 0, noise=z), seeded)
    assert not torch.allclose(sample_latents(system, CAPTIONS[:2], [0, 1], 0, noise=0.5 * z), seeded)


def test_shard_batches_partition_all_positions():
    positions = list(range(11))
    parts = [shard_batches(positions, 3, k, 2) for k in range(2)]
    flat = sorted(p for part in parts for batch in part for p in batch)
    assert flat == positions
    assert parts[0] == [[0, 1, 2], [6, 7, 8]]
    with pytest.raises(ValueError):
        shard_batches(positions, 3, 2, 2)


def test_one_step_x0_formula():
    class ConstEps(torch.nn.Module):
        def forward(self, x, t, cond):
            assert int(t[0]) == 999
            return type("O", (), {"sample": torch.full_like(x, 0.5)})()

    from diffusers import DDPMScheduler

    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    z = torch.randn(2, 4, 8, 8)
    abar = sched.alphas_cumprod[999]
    expected = (z - (1 - abar).sqrt() * 0.5) / abar.sqrt()
    assert torch.allclose(one_step_x0(ConstEps(), sched, z, None), expected)
    assert abs(float(abar) - 0.0047) < 5e-4  # SD's alpha-bar at t = 999


def test_failed_shard_leaves_no_output(tiny_pipeline_dir, prompts, tmp_path, monkeypatch):
    import sb2bench.sample.generate as sampling

    calls = {"n": 0}
    real = sampling.decode

    def failing_decode(system, latents):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("killed")
        return real(system, latents)

    monkeypatch.setattr(sampling, "decode", failing_decode)
    spec = SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), steps=1, cfg=1.0)
    with pytest.raises(RuntimeError):
        generate_shard(spec, prompts, tmp_path / "out", batch_size=2)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind either


def test_gather_rejects_missing_images(tiny_pipeline_dir, prompts, tmp_path):
    spec = SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), steps=1, cfg=1.0)
    shard = generate_shard(spec, prompts, tmp_path / "s0", 0, 2, batch_size=2)
    with pytest.raises(ValueError, match="expected 7"):
        gather_shards([shard], tmp_path / "merged", expected=len(prompts))
    assert not (tmp_path / "merged").exists()


def test_random_unet_system_differs_from_trained(tiny_pipeline_dir, prompts, tmp_path):
    base = dict(name="s", pipeline=str(tiny_pipeline_dir), steps=2, cfg=1.0)
    a = generate_shard(SystemSpec(**base), prompts[:2], tmp_path / "a", batch_size=2)
    b = generate_shard(SystemSpec(**base, unet="random", seed=3), prompts[:2], tmp_path / "b", batch_size=2)
    assert _pngs(a) != _pngs(b)


def test_system_spec_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        SystemSpec.from_dict({"name": "x", "pipeline": "p", "stepz": 3})


def test_prompt_file_errors(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(PromptFileError, match="empty.jsonl is empty"):
        read_prompts(empty)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"caption": "no index"}\n')
    with pytest.raises(PromptFileError, match="bad.jsonl:1"):
        read_prompts(bad)
    dup = tmp_path / "dup.jsonl"
    write_prompts(dup, [{"index": 0, "caption": "a"}, {"index": 0, "caption": "b"}])
    with pytest.raises(PromptFileError, match="repeats"):
        read_prompts(dup)
    with pytest.raises(PromptFileError, match="does not exist"):
        read_prompts(tmp_path / "nope.jsonl")


def test_runtime_is_recorded_and_half_precision_needs_a_gpu(tiny_pipeline_dir, tmp_path):
    import json

    import pytest

    from sb2bench._infra.device import resolve_runtime

    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_runtime("cpu", "float16")
    with pytest.raises(ValueError, match="float64"):
        resolve_runtime("cpu", "float64")
    spec = SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), kind="onestep")
    prompts = [{"index": 0, "caption": "a red circle"}, {"index": 1, "caption": "a blue square"}]
    shard = generate_shard(spec, prompts, tmp_path / "shard", batch_size=2, device="auto")
    meta = json.loads((shard / "shard.json").read_text())
    assert meta["runtime"]["dtype"] == "float32" and meta["runtime"]["device"] in ("cpu", "cuda")
    other = tmp_path / "other"
    other.mkdir()
    (other / "shard.json").write_text(json.dumps({**meta, "runtime": {**meta["runtime"], "dtype": "float16"}}))
    with pytest.raises(ValueError, match="different precisions"):
        gather_shards([shard, other], tmp_path / "images")
    manifest = json.loads((gather_shards([shard], tmp_path / "ok") / "manifest.json").read_text())
    assert manifest["runtime"][0]["dtype"] == "float32"
