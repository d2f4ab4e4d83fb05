"""Gradient accumulation: one global batch, the same update on any processes x accumulation layout (real
CPU runs through the CLI, gloo for several processes), and resuming across layouts only at the same global batch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sb2bench.data.prompts import write_prompts
from sb2bench.train.config import TrainConfig

TOL = 1e-5  # float32, gradients summed in another order
CAPTIONS = ["a red circle", "a blue square on a white background", "a green triangle", "a yellow circle",
            "a purple star", "an orange ring"]


def test_accumulation_fits_the_global_batch_or_is_refused_with_the_numbers():
    cfg = TrainConfig(teacher="t", student_init="s", prompts="p", batch_size=16, global_batch_size=64)
    assert [cfg.accumulation(n) for n in (1, 2, 4)] == [4, 2, 1]
    assert {cfg.global_batch(n) for n in (1, 2, 4)} == {64}
    for n, fix in ((3, r"use a process count that divides 64"), (8, r"set batch_size to one of \[2, 4, 8\]")):
        with pytest.raises(ValueError, match=rf"global_batch_size': 64 is not a multiple of {n} process\(es\) x "
                                             rf"batch_size 16 = {16 * n}, .*{fix}"):
            cfg.accumulation(n)
    toy = TrainConfig(teacher="t", student_init="s", prompts="p", batch_size=32)  # 0: processes x batch_size
    assert toy.accumulation(1) == 1 and toy.global_batch(2) == 64
    assert toy.semantic_hash() == TrainConfig.from_dict({"teacher": "t", "student_init": "s", "prompts": "p",
                                                         "batch_size": 32}).semantic_hash()
    with pytest.raises(ValueError, match="global_batch_size"):
        TrainConfig.from_dict({"teacher": "t", "student_init": "s", "prompts": "p", "global_batch_size": -1})


def _config(tiny_pipeline_dir, tmp_path, **kw) -> dict:
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, [{"index": i, "caption": c} for i, c in enumerate(CAPTIONS)])
    return {"teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir), "prompts": str(prompts),
            "batch_size": 1, "global_batch_size": 4, "max_steps": 2, "student_lr": 1e-3, "lora_lr": 1e-2,
            "adam_eps": 1e-3,  # a gradient element near 0 would turn float noise into a +-lr Adam step: keep it linear
            "lora_cfg": 1.0, "lora_rank": 4, "lora_alpha": 8.0, "lora_updates_per_step": 2, "lora_warmup_steps": 1,
            "lora_null_prompt_prob": 0.5, "ema_decay": 0.9, "checkpoint_every": 1, "checkpoint_total_limit": None,
            "log_every": 1, "threads": 1, "text_embedding_cache": str(tmp_path / "cache"), **kw}


def _train(cfg_file: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    """Through the CLI in a fresh interpreter: the multi-process launch is what these runs test."""
    cmd = [sys.executable, "-m", "sb2bench", "train", "--processes", str(processes), "--cpu",
           "--config", str(cfg_file), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env, check=False)


def _weights(run: Path, sub: str = "unet") -> dict:
    return load_file(str(run / "student" / sub / "diffusion_pytorch_model.safetensors"))


def _close(a: dict, b: dict) -> float:
    """Largest absolute difference over every tensor (the layouts sum gradients in different orders)."""
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_one_global_batch_gives_one_update_on_every_layout_and_resumes_only_at_that_batch(tiny_pipeline_dir,
                                                                                           tmp_path, train_here):
    """Several-process runs go through the launcher in subprocesses; one-process runs go through the same CLI
    entry in this process. Refusing another global batch at resume: tests/train/test_train_ddp.py."""
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(_config(tiny_pipeline_dir, tmp_path)))
    runs = {}
    for processes in (1, 2, 4):  # x 4, x 2, x 1 accumulation steps of batch_size 1
        out = tmp_path / f"p{processes}"
        if processes == 1:
            code, stdout, stderr = train_here(cfg_file, out)
        else:
            proc = _train(cfg_file, out, processes)
            code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        assert code == 0, stdout[-3000:] + stderr[-3000:]
        assert f"global batch 4 = {processes} process(es) x batch_size 1 x {4 // processes} accumulation" in stdout
        prov = json.loads((out / "student" / "provenance.json").read_text())
        assert (prov["processes"], prov["accumulation"], prov["global_batch_size"]) == (processes, 4 // processes, 4)
        runs[processes] = out
    init = load_file(str(tiny_pipeline_dir / "unet" / "diffusion_pytorch_model.safetensors"))
    ref = _weights(runs[4])
    moved = max((ref[k] - init[k]).abs().max().item() for k in ref)
    assert moved > 1e-4  # the student did train
    for processes in (1, 2):
        for sub in ("unet", "unet_ema"):
            assert _close(_weights(runs[processes], sub), _weights(runs[4], sub)) < TOL, \
                (processes, sub)
    # a different global batch draws other samples: far from the reference (the tolerance above means something)
    other = tmp_path / "g2"
    cfg2 = tmp_path / "run2.json"
    cfg2.write_text(json.dumps(_config(tiny_pipeline_dir, tmp_path, global_batch_size=2)))
    assert train_here(cfg2, other)[0] == 0
    assert _close(_weights(other), ref) > 100 * _close(_weights(runs[1]), ref)
    # crash of the 2-process run after step 1, resumed by one process (4 accumulation steps): the same student
    resumed = tmp_path / "resumed"
    shutil.copytree(runs[2], resumed)
    shutil.rmtree(resumed / "student")
    shutil.rmtree(resumed / "checkpoints" / "checkpoint-2")
    meta = json.loads((resumed / "checkpoints" / "checkpoint-1" / "meta.json").read_text())
    assert (meta["world_size"], meta["accumulation"], meta["global_batch_size"]) == (2, 2, 4)
    code, stdout, stderr = train_here(cfg_file, resumed)
    assert code == 0, stdout[-3000:] + stderr[-3000:]
    assert json.loads((resumed / "student" / "provenance.json").read_text())["resumed_from"] == 1
    assert _close(_weights(resumed), ref) < TOL
    # a process count that cannot divide the global batch is refused before any process starts
    proc = _train(cfg_file, tmp_path / "p3", 3)
    assert proc.returncode == 2 and "global_batch_size': 4 is not a multiple of 3 process(es)" in proc.stderr
    assert not (tmp_path / "p3").exists() and "accelerate.commands.launch" not in proc.stderr
