"""The image regulariser (SBv2 "Ours*", after DMD): the pairs folder and its loss in a training step."""
import argparse
import json

import pytest
import torch
import torch.nn.functional as F

from sb2bench.data.prompts import write_prompts
from sb2bench.sample.generate import SystemSpec, initial_noise, load_system, sample_latents
from sb2bench.train import TrainConfig
from sb2bench.train.cli import add_cli
from sb2bench.train.embeddings import prompt_embeddings
from sb2bench.train.regularisation import RegPairs, build_pairs
from sb2bench.train.step import _reg_loss, train_step
from sb2bench.train.student import predict_x0
from sb2bench.train.trainer import _accelerator, build_parts

CAPTIONS = ["a red circle", "a blue square on a white background", "a green triangle", "a yellow circle"]
ROWS = [{"index": 10 + i, "caption": c} for i, c in enumerate(CAPTIONS)]


@pytest.fixture(scope="module")
def pairs(tiny_pipeline_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reg") / "pairs"
    return build_pairs(str(tiny_pipeline_dir), ROWS, 3, out, steps=2, cfg=2.0, seed=5, batch_size=2, shard_size=2)


def test_pairs_round_trip_and_match_the_teacher(pairs, tiny_pipeline_dir):
    manifest = json.loads((pairs / "pairs.json").read_text())
    assert manifest["shards"] == ["shard-00000.safetensors", "shard-00001.safetensors"]
    assert manifest["latent_shape"] == [4, 8, 8] and manifest["made"]["n"] == 3
    assert not list(pairs.parent.glob(".pairs*")), "no partial folder may be left behind"
    reg = RegPairs.open(pairs, verify=True)
    assert reg.captions == CAPTIONS[:3] and len(reg) == 3 and reg.content_hash == manifest["content_hash"]
    noise, lat = reg.get([2, 0, 1])
    assert torch.equal(noise, initial_noise([2, 0, 1], (4, 8, 8), 5))  # the noise of pair i comes from (seed, i)
    system = load_system(SystemSpec(name="t", pipeline=str(tiny_pipeline_dir), steps=2, cfg=2.0, seed=5))
    assert torch.equal(lat[1:], sample_latents(system, CAPTIONS[:2], [0, 1], 0))
    rows = [json.loads(line) for line in (pairs / "prompts.jsonl").read_text().splitlines()]
    assert [r["source_index"] for r in rows] == [10, 11, 12]


def test_pairs_are_deterministic_and_reused(pairs, tiny_pipeline_dir, tmp_path):
    mtime = (pairs / "pairs.json").stat().st_mtime_ns
    again = build_pairs(str(tiny_pipeline_dir), ROWS, 3, pairs, steps=2, cfg=2.0, seed=5, batch_size=2, shard_size=2)
    assert again == pairs and (pairs / "pairs.json").stat().st_mtime_ns == mtime  # finished: returned as is
    # a fresh build elsewhere (a stale partial folder in the way) gives the same bytes; other batching
    # changes only the last bits
    stale = tmp_path / ".other.partial"
    stale.mkdir()
    (stale / "made.json").write_text("{}")
    other = build_pairs(str(tiny_pipeline_dir), ROWS, 3, tmp_path / "other", steps=2, cfg=2.0, seed=5,
                        batch_size=2, shard_size=2)
    assert RegPairs.open(other).content_hash == RegPairs.open(pairs).content_hash
    one = build_pairs(str(tiny_pipeline_dir), ROWS, 3, tmp_path / "one", steps=2, cfg=2.0, seed=5, batch_size=1,
                      shard_size=2)
    assert torch.allclose(RegPairs.open(one).get([0, 1, 2])[1], RegPairs.open(pairs).get([0, 1, 2])[1], atol=1e-5)
    with pytest.raises(ValueError, match="n=9"):
        build_pairs(str(tiny_pipeline_dir), ROWS, 9, tmp_path / "x", steps=2)
    (other / "shard-00001.safetensors").write_bytes(b"x")
    with pytest.raises(ValueError, match="sha256"):
        RegPairs.open(other, verify=True)
    with pytest.raises(FileNotFoundError, match="train-reg-pairs"):
        RegPairs.open(tmp_path / "missing")


def test_an_interrupted_build_resumes_from_its_finished_shards(pairs, tiny_pipeline_dir, tmp_path):
    import shutil

    work = tmp_path / ".res.partial"  # what a build killed after its first shard leaves
    shutil.copytree(pairs, work)
    (work / "made.json").write_text(json.dumps(json.loads((pairs / "pairs.json").read_text())["made"]))
    for name in ("pairs.json", "shard-00001.safetensors", "prompts.jsonl"):
        (work / name).unlink()
    kept = (work / "shard-00000.safetensors").stat().st_ino
    res = build_pairs(str(tiny_pipeline_dir), ROWS, 3, tmp_path / "res", steps=2, cfg=2.0, seed=5, batch_size=2,
                      shard_size=2)
    assert (res / "shard-00000.safetensors").stat().st_ino == kept and not work.exists()
    assert RegPairs.open(res, verify=True).content_hash == RegPairs.open(pairs).content_hash


def _parts(tiny_pipeline_dir, tmp_path, pairs, **kw):
    """Training parts of a tiny run with the regulariser on (weight 0.25, as DMD's lambda_reg)."""
    write_prompts(tmp_path / "prompts.jsonl", ROWS)
    cfg = TrainConfig.from_dict({
        "teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir),
        "prompts": str(tmp_path / "prompts.jsonl"), "batch_size": 2, "max_steps": 4, "student_lr": 1e-3,
        "lora_lr": 1e-2, "lora_cfg": 1.0, "lora_rank": 4, "lora_alpha": 8.0, "reg_weight": 0.25,
        "reg_pairs": str(pairs), "reg_batch_size": 2, "text_embedding_cache": str(tmp_path / "cache"), **kw})
    cond, null, _ = prompt_embeddings(cfg.teacher, CAPTIONS, tmp_path / "cache")
    return build_parts(cfg, _accelerator(cfg), cond[:1], tmp_path / "cache"), cond, null


@pytest.mark.parametrize("mode", ["mse_latent", "mse_pixel"])
def test_reg_loss_is_the_hand_computed_mse(pairs, tiny_pipeline_dir, tmp_path, mode):
    from sb2bench.train.clip_guidance import decode01

    p, _, _ = _parts(tiny_pipeline_dir, tmp_path, pairs, reg_loss=mode)
    state = p.gen.get_state()
    loss = _reg_loss(p)
    p.gen.set_state(state)
    idx = torch.randint(0, 3, (2,), generator=p.gen).tolist()
    noise, target = RegPairs.open(pairs).get(idx)
    with torch.no_grad():
        pred = predict_x0(p.student, p.acp, noise, p.reg.cond[idx], p.student_t)
        if mode == "mse_pixel":
            pred, target = decode01(p.decoder, pred), decode01(p.decoder, target)
        expected = ((pred - target) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in p.student.parameters() if q.requires_grad)


def test_step_with_the_regulariser_logs_and_trains(pairs, tiny_pipeline_dir, tmp_path):
    p, cond, null = _parts(tiny_pipeline_dir, tmp_path, pairs)
    before = {n: q.detach().clone() for n, q in p.student.named_parameters()}
    logs = train_step(p, 0, cond, null, CAPTIONS)
    assert logs["loss_reg"] > 0 and logs["loss_lora"] > 0
    assert any(not torch.equal(q, before[n]) for n, q in p.student.named_parameters())


def test_reg_pairs_of_another_latent_shape_are_refused(pairs, tiny_pipeline_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in pairs.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((bad / "pairs.json").read_text())
    (bad / "pairs.json").write_text(json.dumps({**manifest, "latent_shape": [4, 64, 64]}))
    with pytest.raises(ValueError, match="'reg_pairs'.*shape"):
        _parts(tiny_pipeline_dir, tmp_path, bad)


def test_cli_builds_pairs(tiny_pipeline_dir, tmp_path):
    write_prompts(tmp_path / "p.jsonl", ROWS)
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["train-reg-pairs", "--teacher", str(tiny_pipeline_dir), "--prompts",
                           str(tmp_path / "p.jsonl"), "--n", "2", "--steps", "1", "--out", str(tmp_path / "cli")])
    a.func(a)
    reg = RegPairs.open(tmp_path / "cli", verify=True)
    assert len(reg) == 2 and reg.manifest["made"]["steps"] == 1 and reg.manifest["made"]["cfg"] == 4.5
    assert F.mse_loss(*reg.get([0, 1])).item() > 0


def test_run_with_both_optional_losses_logs_them_and_resumes_exactly(pairs, tiny_pipeline_dir, tmp_path):
    import csv
    import shutil

    from safetensors.torch import load_file

    from sb2bench.train import run

    write_prompts(tmp_path / "prompts.jsonl", ROWS)
    cfg = {"teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir),
           "prompts": str(tmp_path / "prompts.jsonl"), "batch_size": 2, "max_steps": 2, "student_lr": 1e-3,
           "lora_lr": 1e-2, "lora_cfg": 1.0, "lora_rank": 4, "lora_alpha": 8.0, "checkpoint_every": 1,
           "checkpoint_total_limit": None, "log_every": 1, "text_embedding_cache": str(tmp_path / "cache"),
           "hps_loss_weight": 0.1, "hps_model": "toy:clip-toy", "reg_weight": 0.25, "reg_pairs": str(pairs),
           "reg_batch_size": 2, "reg_loss": "mse_pixel"}
    final_a = run(cfg, tmp_path / "a")
    prov = json.loads((final_a / "provenance.json").read_text())
    assert prov["reg_pairs"]["content_hash"] == RegPairs.open(pairs).content_hash
    with open(tmp_path / "a" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and all(r["loss_reg"] and r["loss_hps"] and r["hps_weight"] == "0.1" for r in rows)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "student")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "checkpoint-2")
    final_b = run(cfg, tmp_path / "b")
    wa, wb = (load_file(str(f / "unet" / "diffusion_pytorch_model.safetensors")) for f in (final_a, final_b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
