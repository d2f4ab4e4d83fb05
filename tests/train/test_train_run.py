"""``sb2bench.train.run`` end to end on the tiny pipeline: artifacts, resume, LoRA export, CLI."""
import argparse
import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from sb2bench.models import zoo
from sb2bench.data.prompts import write_prompts
from sb2bench.plan.paths import LORA_WEIGHTS
from sb2bench.train import lora, run
from sb2bench.train.cli import add_cli
from sb2bench.train.clip_guidance import ClipScorer, load_decoder

CAPTIONS = ["a red circle", "a blue square on a white background", "a green triangle", "a yellow circle"]


def config(tiny_pipeline_dir, tmp_path, **kw) -> dict:
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, [{"index": i, "caption": c} for i, c in enumerate(CAPTIONS)])
    return {"teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir), "prompts": str(prompts),
            "batch_size": 2, "max_steps": 4, "student_lr": 1e-3, "lora_lr": 1e-2, "lora_cfg": 1.0,
            "lora_rank": 4, "lora_alpha": 8.0, "student_lora_rank": 4, "student_lora_alpha": 8.0,
            "lora_updates_per_step": 2, "checkpoint_every": 2, "checkpoint_total_limit": None,
            "log_every": 1, "text_embedding_cache": str(tmp_path / "cache"), **kw}


def rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv.DictReader(f)]


def test_resume_matches_uninterrupted_run(tiny_pipeline_dir, tmp_path):
    cfg = config(tiny_pipeline_dir, tmp_path, ema_decay=0.9, clip_loss="clamped", clip_model="toy:clip-toy",
                 clip_tau=0.9, sample_every=2, sample_prompts=2)
    a = tmp_path / "a"
    final_a = run(cfg, a)
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-4"]
    for name in ("unet/config.json", "unet/diffusion_pytorch_model.safetensors", "unet_ema/config.json",
                 "lora_teacher/pytorch_lora_weights.safetensors", "train_config.json", "provenance.json"):
        assert (final_a / name).exists(), name
    prov = json.loads((final_a / "provenance.json").read_text())
    assert prov["steps"] == 4 and "versions" in prov and "git_commit" in prov and prov["resumed_from"] == 0
    assert (a / "samples" / "grid.png").exists() and len(list((a / "samples").glob("step-*"))) == 3
    # simulate a crash after step 2: drop the last checkpoint and the final artifacts, rerun
    b = tmp_path / "b"
    shutil.copytree(a, b)
    shutil.rmtree(b / "student")
    shutil.rmtree(b / "checkpoints" / "checkpoint-4")
    final_b = run(cfg, b)
    assert json.loads((final_b / "provenance.json").read_text())["resumed_from"] == 2
    for sub in ("unet", "unet_ema"):
        wa = load_file(str(final_a / sub / "diffusion_pytorch_model.safetensors"))
        wb = load_file(str(final_b / sub / "diffusion_pytorch_model.safetensors"))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), sub
    init = zoo.load_unet(str(tiny_pipeline_dir)).state_dict()
    assert any(not torch.equal(init[k], wa[k]) for k in wa)
    assert rows(a / "log.csv") == rows(b / "log.csv") and len(rows(b / "log.csv")) == 4
    # a finished run is returned as is; another config in the same folder is refused
    assert run(cfg, b) == final_b
    with pytest.raises(ValueError, match="another config"):
        run({**cfg, "student_lr": 5e-4}, b)


def test_extend_from_continues_a_finished_run_exactly(tiny_pipeline_dir, tmp_path):
    cfg = config(tiny_pipeline_dir, tmp_path, ema_decay=0.9)
    whole = run(cfg, tmp_path / "whole")
    short = tmp_path / "short"
    run({**cfg, "max_steps": 2}, short)
    longer = run({**cfg, "extend_from": str(short)}, tmp_path / "longer")
    for sub in ("unet", "unet_ema"):
        wa = load_file(str(whole / sub / "diffusion_pytorch_model.safetensors"))
        wb = load_file(str(longer / sub / "diffusion_pytorch_model.safetensors"))
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa), sub
    assert rows(tmp_path / "whole" / "log.csv") == rows(tmp_path / "longer" / "log.csv")
    prov = json.loads((longer / "provenance.json").read_text())
    assert prov["resumed_from"] == 2 and prov["extended_from"] == str(short)
    assert json.loads((short / "checkpoints" / "checkpoint-2" / "meta.json").read_text())["config_hash"] != \
        json.loads((tmp_path / "longer" / "checkpoints" / "checkpoint-2" / "meta.json").read_text())["config_hash"]
    # refused before any training: another config, no longer than the source, a schedule that reads max_steps
    with pytest.raises(ValueError, match="more than max_steps"):
        run({**cfg, "student_lr": 5e-4, "extend_from": str(short)}, tmp_path / "other")
    with pytest.raises(ValueError, match="'max_steps' \\(2\\) must exceed"):
        run({**cfg, "max_steps": 2, "extend_from": str(short)}, tmp_path / "same")
    with pytest.raises(ValueError, match="clip_schedule 'linear' depends on max_steps"):
        run({**cfg, "clip_loss": "clamped", "clip_model": "toy:clip-toy", "extend_from": str(short)}, tmp_path / "c")
    with pytest.raises(ValueError, match="'extend_from': needs resume: true"):
        run({**cfg, "resume": False, "extend_from": str(short)}, tmp_path / "r")
    with pytest.raises(ValueError, match="no finished checkpoint"):
        run({**cfg, "extend_from": str(tmp_path / "missing")}, tmp_path / "m")
    assert not (tmp_path / "other" / "checkpoints").exists()


def test_checkpoint_total_limit_keeps_newest(tiny_pipeline_dir, tmp_path):
    run(config(tiny_pipeline_dir, tmp_path, max_steps=3, checkpoint_every=1, checkpoint_total_limit=2), tmp_path / "r")
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_lora_student_round_trips_through_diffusers(tiny_pipeline_dir, tmp_path):
    from diffusers import StableDiffusionPipeline

    out = tmp_path / "lora-run"
    final = run(config(tiny_pipeline_dir, tmp_path, scheme="lora", max_steps=2), out)
    assert not (final / "unet").exists()
    sd = load_file(str(final / LORA_WEIGHTS))
    assert sd and all(k.startswith("unet.") and (".lora.down." in k or ".lora.up." in k) for k in sd)
    # the trained student, rebuilt from the last checkpoint
    student = zoo.load_unet(str(tiny_pipeline_dir))
    lora.add_lora(student, lora.STUDENT_ADAPTER, 4, 8.0, ["to_q", "to_k", "to_v", "to_out.0"])
    lora.load_trainable(student, load_file(str(out / "checkpoints" / "checkpoint-2" / "student.safetensors")), "s")
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_pipeline_dir), safety_checker=None,
                                                   requires_safety_checker=False)
    base = zoo.load_unet(str(tiny_pipeline_dir)).eval()
    pipe.load_lora_weights(str(final))
    x, t, c = torch.randn(2, 4, 8, 8), torch.tensor([999, 999]), torch.randn(2, 20, 32)
    with torch.no_grad():
        want = student.eval()(x, t, c).sample
        got = pipe.unet(x, t, c).sample
        plain = base(x, t, c).sample
    assert (want - plain).abs().max() > 1e-4, "the LoRA student did not learn anything"
    assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    # the folder describes itself (lora_config.json), so the sampler and merges fuse it without the config
    from sb2bench.models.lora import load_fused_unet
    from sb2bench.sample.generate import SystemSpec, load_system

    with torch.no_grad():
        assert torch.allclose(load_fused_unet(str(final)).eval()(x, t, c).sample, want, atol=1e-5)
        system = load_system(SystemSpec(name="s", pipeline=str(tiny_pipeline_dir), kind="onestep",
                                        unet=str(final), unet_subfolder=None))
        assert torch.allclose(system.unet(x, t, c).sample, want, atol=1e-5)
    assert system.provenance["unet"]["lora"] is True


def test_clip_scorer_gradient_reaches_latents_and_clamp_stops_it(tiny_pipeline_dir):
    for decoder_spec in ("toy:taesd-toy", str(tiny_pipeline_dir)):
        scorer = ClipScorer("toy:clip-toy", load_decoder(decoder_spec))
        x0 = torch.randn(2, 4, 8, 8, requires_grad=True)
        cos = scorer.cosines(x0, CAPTIONS[:2])
        assert cos.shape == (2,) and (cos.abs() <= 1).all()
        torch.nn.functional.relu(1.0 - cos).mean().backward()  # tau = 1: every sample below the margin
        assert x0.grad.abs().sum() > 0, decoder_spec
        x0.grad = None
        cos = scorer.cosines(x0, CAPTIONS[:2])
        torch.nn.functional.relu(-1.0 - cos).mean().backward()  # tau = -1: every sample above, no push
        assert torch.count_nonzero(x0.grad) == 0


def test_cli_registers_train_and_reports_bad_config(tiny_pipeline_dir, tmp_path):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(config(tiny_pipeline_dir, tmp_path, max_steps=1)))
    args = parser.parse_args(["train", "--config", str(cfg_file), "--out", str(tmp_path / "cli-run")])
    args.func(args)
    assert (tmp_path / "cli-run" / "student" / "unet" / "config.json").exists()
    cfg_file.write_text(json.dumps({**config(tiny_pipeline_dir, tmp_path), "learning_rate": 1}))
    args = parser.parse_args(["train", "--config", str(cfg_file), "--out", str(tmp_path / "bad")])
    with pytest.raises(ValueError, match="unknown key.*learning_rate"):
        args.func(args)


def test_prompts_encoded_per_batch_train_the_same_student(tiny_pipeline_dir, tmp_path):
    """A prompt set above text_embedding_cache_max_prompts is encoded per batch (paper scale: millions of
    prompts); the student must come out exactly as with the cached embeddings, and no cache file is written."""
    cached = run(config(tiny_pipeline_dir, tmp_path, max_steps=2), tmp_path / "cached")
    streamed = run(config(tiny_pipeline_dir, tmp_path, max_steps=2, text_embedding_cache_max_prompts=2,
                          text_embedding_cache=str(tmp_path / "cache2")), tmp_path / "streamed")
    a = load_file(str(cached / "unet" / "diffusion_pytorch_model.safetensors"))
    b = load_file(str(streamed / "unet" / "diffusion_pytorch_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "cache2").exists() or not any((tmp_path / "cache2").glob("text-*"))
    assert json.loads((streamed / "provenance.json").read_text())["text_embeddings"] == "encoded per batch"
