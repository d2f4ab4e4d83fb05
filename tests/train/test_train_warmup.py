"""The shared LoRA-teacher warm-up: a run that loads it ends bit-identical to one that warms up itself,
POST_WARMUP_KEYS really cannot change it, mismatches are refused, and the DAG shares it between runs."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_train_regularisation import pairs  # noqa: F401  (the module-scoped regulariser pairs fixture)
from test_train_run import config, rows

from sb2bench.train import checkpoint, run, warmup
from sb2bench.train.cli import add_cli
from sb2bench.train.trainer import train_warmup

ROOT = Path(__file__).resolve().parents[2]
CLIP = {"clip_loss": "clamped", "clip_model": "toy:clip-toy"}
HPS = {"hps_loss_weight": 0.5, "hps_model": "toy:clip-toy"}
REG = {"reg_weight": 0.25, "reg_pairs": "<pairs>"}  # <pairs>: the fixture's folder
# One change per key of POST_WARMUP_KEYS (with the companions that make it valid and put its code path to
# work, e.g. a CLIP model for the CLIP keys); every changed key is itself a post-warm-up key.
CHANGES = {
    "max_steps": {"max_steps": 9}, "student_lr": {"student_lr": 5e-5},
    "student_lora_lr": {"student_lora_lr": 1e-3}, "t_min": {"t_min": 500},
    "t_max": {"t_max": 600}, "teacher_cfg": {"teacher_cfg": 7.5}, "lora_cfg": {"lora_cfg": 4.5},
    "weighting": {"weighting": "constant"},
    "clip_loss": CLIP, "clip_model": {"clip_loss": "unclamped", "clip_model": "toy:clip-toy"},
    "clip_decoder": {**CLIP, "clip_decoder": "toy:taesd-toy"}, "clip_tau": {**CLIP, "clip_tau": 0.9},
    "clip_weight": {**CLIP, "clip_weight": 2.0}, "clip_schedule": {**CLIP, "clip_schedule": "cosine"},
    "clip_prompt_prefix": {**CLIP, "clip_prompt_prefix": "a photo of "},
    "hps_loss_weight": HPS, "hps_model": HPS,
    "hps_checkpoint": {"hps_checkpoint": "/not/read/while/hps_loss_weight/is/0"},
    "hps_version": {**HPS, "hps_version": "v2.0"}, "hps_schedule": {**HPS, "hps_schedule": "linear"},
    "reg_weight": REG, "reg_pairs": REG, "reg_batch_size": {**REG, "reg_batch_size": 3},
    "reg_loss": {**REG, "reg_loss": "mse_pixel"},
    "ema_decay": {"ema_decay": 0.9},
    "checkpoint_every": {"checkpoint_every": 1}, "checkpoint_total_limit": {"checkpoint_total_limit": 1},
    "log_every": {"log_every": 3}, "sample_every": {"sample_every": 1}, "sample_prompts": {"sample_prompts": 1},
    "tensorboard": {"tensorboard": True}, "text_embedding_cache": {"text_embedding_cache": "<tmp>/other-cache"},
    "resume": {"resume": False}, "lora_warmup_from": {"lora_warmup_from": "/any/warm-up"},
    "diagnostics_every": {"diagnostics_every": 1}, "extend_from": {"extend_from": "/any/finished-run"},
    "teacher_unet": {"teacher_unet": "shared"},
}


def warm_config(tiny_pipeline_dir, tmp_path, **kw) -> dict:
    """A cheap warm-up: 2 steps of 2 LoRA updates at batch 2."""
    return config(tiny_pipeline_dir, tmp_path, lora_warmup_steps=2, **kw)


def state(folder: Path) -> tuple[dict, dict]:
    tensors, st, _ = checkpoint.read(folder, warmup.META)
    return tensors, st


def same(a, b) -> bool:
    """Bit-equality of nested state (tensors by torch.equal)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def same_safetensors(a: Path, b: Path) -> bool:
    """Every tensor equal (LoRA files carry peft metadata whose order in the header varies from process to
    process, so their bytes are compared tensor by tensor)."""
    ta, tb = load_file(str(a)), load_file(str(b))
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def cli(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    args.func(args)


@pytest.mark.parametrize("scheme", ["full", "lora"])
def test_shared_warmup_trains_the_same_student_as_its_own(tiny_pipeline_dir, tmp_path, scheme):
    """The DAG's path: the warm-up job gets the run's warm-up keys only (warmup_job_config), the run has
    post-warm-up extras (CLIP loss, EMA, a sample grid at step 0 before the warm-up)."""
    cfg = warm_config(tiny_pipeline_dir, tmp_path, scheme=scheme, max_steps=2, checkpoint_every=1, ema_decay=0.9,
                      sample_every=2, sample_prompts=2, **CLIP)
    own = run(cfg, tmp_path / "own")
    job = tmp_path / "warmup.json"
    job.write_text(json.dumps(warmup.warmup_job_config(cfg)))
    cli("train-warmup", "--config", str(job), "--out", str(tmp_path / "w"))
    meta = json.loads((tmp_path / "w" / warmup.META).read_text())
    assert meta["key"] == warmup.warmup_key(cfg) and meta["steps"] == 2 and meta["world_size"] == 1
    assert meta["teacher"]["sha256"] and meta["student_init"]["sha256"] and meta["prompts"]["sha256"]
    shared = run({**cfg, "lora_warmup_from": str(tmp_path / "w")}, tmp_path / "shared")
    weights = ["lora_teacher/pytorch_lora_weights.safetensors"]
    if scheme == "full":
        weights += ["unet/diffusion_pytorch_model.safetensors", "unet_ema/diffusion_pytorch_model.safetensors"]
        assert (own / weights[1]).read_bytes() == (shared / weights[1]).read_bytes()
    else:
        weights += ["pytorch_lora_weights.safetensors", "ema/pytorch_lora_weights.safetensors"]
    for name in weights:
        assert same_safetensors(own / name, shared / name), name
    assert rows(tmp_path / "own" / "log.csv") == rows(tmp_path / "shared" / "log.csv")
    final = [checkpoint.read(d / "checkpoints" / "checkpoint-2")[1] for d in (tmp_path / "own", tmp_path / "shared")]
    assert same(final[0], final[1])  # optimisers, schedules, the run's generator and torch's global one
    prov = [json.loads((d / "provenance.json").read_text()) for d in (own, shared)]
    assert prov[0]["config_hash"] == prov[1]["config_hash"]  # lora_warmup_from is not semantic
    assert prov[1]["lora_warmup"] == {"from": str(tmp_path / "w"), "key": meta["key"]}
    # a resumed run ignores lora_warmup_from: its checkpoint holds the warmed-up LoRA
    shutil.rmtree(shared)
    shutil.rmtree(tmp_path / "shared" / "checkpoints" / "checkpoint-2")
    again = run({**cfg, "lora_warmup_from": str(tmp_path / "deleted")}, tmp_path / "shared")
    assert json.loads((again / "provenance.json").read_text())["resumed_from"] == 1
    assert same_safetensors(own / weights[1], again / weights[1])


def test_the_warmup_never_draws_from_the_global_generator(tiny_pipeline_dir, tmp_path):
    """Why the saved state leaves torch's global stream out: a run keeps its own either way."""
    from sb2bench.train.trainer import _accelerator, _prompts_and_parts, _warm_up
    from sb2bench.train.config import TrainConfig

    cfg = TrainConfig.from_dict(warm_config(tiny_pipeline_dir, tmp_path))
    _, cond, null, _, p = _prompts_and_parts(cfg, _accelerator(cfg), tmp_path / "cache")
    before, gen = torch.get_rng_state(), p.gen.get_state()
    _warm_up(p, cond, null)
    assert torch.equal(torch.get_rng_state(), before) and not torch.equal(p.gen.get_state(), gen)


@pytest.fixture(scope="module")
def baseline(tiny_pipeline_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warm-base")
    return tmp, state(train_warmup(warm_config(tiny_pipeline_dir, tmp), tmp / "w"))


def test_every_post_warmup_key_is_changed_below():
    assert set(CHANGES) == set(warmup.POST_WARMUP_KEYS)
    assert all(set(change) <= set(warmup.POST_WARMUP_KEYS) for change in CHANGES.values())


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_a_post_warmup_key_leaves_the_warmup_bit_identical(tiny_pipeline_dir, baseline, pairs, key):  # noqa: F811
    tmp, want = baseline
    change = {k: str(pairs) if v == "<pairs>" else v.replace("<tmp>", str(tmp)) if isinstance(v, str) else v
              for k, v in CHANGES[key].items()}
    cfg = warm_config(tiny_pipeline_dir, tmp, **change)
    assert warmup.warmup_key(cfg) == warmup.warmup_key(warm_config(tiny_pipeline_dir, tmp))
    got = state(train_warmup(cfg, tmp / f"w-{key}"))
    assert same(got[0], want[0]), f"{key}: the LoRA teacher differs"
    assert same(got[1], want[1]), f"{key}: optimiser, schedule or generator state differs"


def test_warmup_key_ignores_post_keys_and_follows_the_rest(tmp_path):
    base = {"teacher": "toy:sd-toy", "student_init": "toy:sd-toy-turbo", "prompts": "p.jsonl",
            "lora_warmup_steps": 50}
    key = warmup.warmup_key(base)
    for change in CHANGES.values():
        assert warmup.warmup_key({**base, **change}) == key, change
    for kept in ({"seed": 1}, {"scheme": "lora"}, {"student_lora_rank": 8}, {"lora_rank": 4}, {"threads": 2},
                 {"batch_size": 8}, {"lora_warmup_steps": 49}, {"student_init_subfolder": "unet_ema"}):
        assert warmup.warmup_key({**base, **kept}) != key, kept
    assert set(warmup.warmup_job_config({**base, **CLIP, "max_steps": 3})) == {
        "teacher", "student_init", "prompts", "lora_warmup_steps"}
    probe = ("import sys; from sb2bench.train.warmup import warmup_key; "
             "warmup_key({'teacher': 't', 'student_init': 's', 'prompts': 'p'}); assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", probe], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_mismatched_or_missing_warmup_is_refused(tiny_pipeline_dir, tmp_path):
    cfg = warm_config(tiny_pipeline_dir, tmp_path, max_steps=1)
    folder = train_warmup(cfg, tmp_path / "w")
    file = re.escape(str(folder / warmup.META))
    with pytest.raises(ValueError, match=f"{file} is the LoRA warm-up of another config.*seed: 0 there, 1 here"):
        run({**cfg, "seed": 1, "lora_warmup_from": str(folder)}, tmp_path / "r")
    with pytest.raises(ValueError, match="another config"):
        train_warmup({**cfg, "seed": 1}, folder)  # a finished folder is not overwritten by another key
    assert train_warmup({**cfg, "max_steps": 5}, folder) == folder  # but reused by a run of its key
    with pytest.raises(ValueError, match=f"{re.escape(str(tmp_path / 'nope' / warmup.META))} does not exist"):
        warmup.read_meta(tmp_path / "nope")
    from sb2bench.train.config import TrainConfig

    good = json.loads((folder / warmup.META).read_text())
    for field, value in (("teacher", {**good["teacher"], "sha256": "0" * 64}), ("prompts", {"sha256": "f"}),
                         ("device", "cuda"), ("mixed_precision", "bf16"), ("format", 0)):
        (folder / warmup.META).write_text(json.dumps({**good, field: value}))
        with pytest.raises(ValueError, match=f"{file}.*{field}.*lora_warmup rule"):
            warmup.verify(folder, TrainConfig.from_dict(cfg), "cpu", "no")


def test_a_multi_process_run_refuses_a_shared_warmup(tiny_pipeline_dir, tmp_path):
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(warm_config(tiny_pipeline_dir, tmp_path, lora_warmup_from=str(tmp_path / "w"))))
    with pytest.raises(ValueError, match="'lora_warmup_from'.*2 processes"):
        cli("train", "--processes", "2", "--cpu", "--config", str(cfg_file), "--out", str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def test_the_dag_shares_warmups_between_runs_that_differ_only_after_it():
    """The full tier's runs (seed replicas included): one warm-up per key, only one-process runs, switchable."""
    import copy

    from sb2bench.plan.config import load_config
    from sb2bench.plan.runs import lora_warmups

    cfg = load_config(ROOT / "config" / "toy_full.yaml")
    groups = lora_warmups(cfg, "results/toy", 0)
    by_run = {name: key for key, names in groups.items() for name in names}
    assert set(by_run) == {r["name"] for r in cfg["training"]["runs"]}  # every run warms up (50 steps)
    assert len({by_run[n] for n in ("turbo-init", "model-a", "clip-unclamped", "clip-clamped", "model-a-reg")}) == 1
    assert len({by_run[n] for n in ("efficient", "efficient-clip", "model-b", "model-b-hps", "model-b-reg")}) == 1
    assert by_run["turbo-init-seed1"] == by_run["clip-clamped-seed1"] != by_run["turbo-init"]
    assert groups[by_run["swiftbrush"]] == ["swiftbrush"] and len(groups) == 9
    assert lora_warmups(cfg, "results/toy", 4) == {}  # multi-process runs warm up themselves
    off = copy.deepcopy(cfg)
    off["training"]["share_lora_warmup"] = False
    assert lora_warmups(off, "results/toy", 0) == {}


def test_the_default_dag_plans_fewer_warmups_than_runs(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    def plan(*configfile: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "-s",
                               str(ROOT / "Snakefile"), "--directory", str(tmp_path), *configfile],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
        return proc.stdout + proc.stderr

    def count(out: str) -> dict:
        return {rule: int(re.search(rf"^{rule}\s+(\d+)$", out, re.M).group(1)) for rule in ("lora_warmup", "train_run")}

    # the full tier trains the seed replicas too (config/toy_full.yaml over the default)
    assert count(plan("--configfile", str(ROOT / "config" / "toy_full.yaml"))) == {"lora_warmup": 9, "train_run": 19}
    out = plan()
    assert count(out) == {"lora_warmup": 5, "train_run": 13}, count(out)
    commands = {m.group(2): m.group(1) for m in re.finditer(r"sb2bench train --config '(\{.*?\})' --out results/toy/runs/(\S+)", out)}
    shared = {name: json.loads(c).get("lora_warmup_from") for name, c in commands.items()}
    assert shared["turbo-init"] == shared["model-a-reg"] != shared["model-b"] and shared["turbo-init"].startswith(
        "results/toy/warmups/")
    assert f"--out {shared['turbo-init']} " in out  # the lora_warmup job that writes it
