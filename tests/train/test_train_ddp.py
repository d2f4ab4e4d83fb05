"""Data-parallel training: the launch command, the collectives, and a real 2-process CPU (gloo) run."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from sb2bench.models import zoo
from sb2bench.data.prompts import write_prompts
from sb2bench.train import distributed
from sb2bench.train.launch import launch_prefix, launch_shell, train_argv

CAPTIONS = ["a red circle", "a blue square on a white background", "a green triangle", "a yellow circle"]


def test_launch_command_is_unchanged_for_one_process_and_accelerate_for_more():
    for n in (0, 1):
        assert launch_prefix(n) == ["sb2bench"] and launch_shell(n) == "sb2bench"
    argv = train_argv(4, '{"a": 1}', "out/run")
    assert argv[:3] == ["python", "-m", "accelerate.commands.launch"]
    assert "--multi_gpu" in argv and argv[argv.index("--num_processes") + 1] == "4"
    assert argv[argv.index("--main_process_port") + 1] == "0"  # a free port per job
    assert argv[-7:] == ["-m", "sb2bench", "train", "--config", '{"a": 1}', "--out", "out/run"]
    assert launch_shell(4).startswith("python -m accelerate.commands.launch --multi_gpu --num_processes 4 ")


def _collectives(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        a, b = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))
        a.grad, b.grad = torch.full((3,), float(rank + 1)), torch.full((2, 2), 2.0 * rank)
        distributed.average_gradients([a, b])
        res = {"a": a.grad.tolist(), "b": b.grad.flatten().tolist()}
        res["finite_local_nan"] = distributed.all_finite(torch.tensor([float("nan") if rank == 1 else 1.0]))
        res["finite_all"] = distributed.all_finite(torch.ones(2))
        res["logs"] = distributed.mean_logs({"loss": float(rank), "skips": 3})
        res["gathered"] = [t.tolist() for t in distributed.gather(torch.tensor([rank], dtype=torch.uint8))]
        w = torch.full((4,), float(rank))
        res["identical_before"] = distributed.replicas_identical([w])
        distributed.broadcast_([w])
        res["identical_after"] = distributed.replicas_identical([w])
        res["w"] = w.tolist()
        Path(out, f"rank{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_collectives_average_and_decide_together(tmp_path):
    mp.spawn(_collectives, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1
    assert r0["a"] == [1.5] * 3 and r0["b"] == [1.0] * 4
    assert r0["finite_local_nan"] is False and r0["finite_all"] is True
    assert r0["logs"] == {"loss": 0.5, "skips": 3}
    assert r0["gathered"] == [[0], [1]]
    assert r0["identical_before"] is False and r0["identical_after"] is True and r0["w"] == [0.0] * 4
    assert distributed.size() == 1 and distributed.all_finite(torch.ones(1))  # no group: identities
    assert distributed.rank_seed(7, 0) == 7 and len({distributed.rank_seed(s, r) for s in (0, 1) for r in (1, 2)}) == 4


def _config(tiny_pipeline_dir, tmp_path, **kw) -> dict:
    prompts = tmp_path / "prompts.jsonl"
    write_prompts(prompts, [{"index": i, "caption": c} for i, c in enumerate(CAPTIONS)])
    return {"teacher": str(tiny_pipeline_dir), "student_init": str(tiny_pipeline_dir), "prompts": str(prompts),
            "batch_size": 2, "max_steps": 3, "student_lr": 1e-3, "lora_lr": 1e-2, "lora_cfg": 1.0,
            "lora_rank": 4, "lora_alpha": 8.0, "student_lora_rank": 4, "student_lora_alpha": 8.0,
            "lora_updates_per_step": 2, "ema_decay": 0.9, "checkpoint_every": 2, "checkpoint_total_limit": None,
            "log_every": 1, "sample_every": 2, "sample_prompts": 2, "threads": 1,
            "text_embedding_cache": str(tmp_path / "cache"), **kw}


def _train(cfg_file: Path, out: Path, processes: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sb2bench", "train", "--processes", str(processes), "--cpu",
           "--config", str(cfg_file), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, check=False)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in csv.DictReader(f)]


def test_two_process_cpu_run_through_the_cli(tiny_pipeline_dir, tmp_path, train_here):
    """Trains, exports, logs once per step, keeps the replicas identical (checked in the run), and a
    resumed 2-process run repeats the uninterrupted one bit for bit."""
    cfg_file = tmp_path / "run.json"
    cfg_file.write_text(json.dumps(_config(tiny_pipeline_dir, tmp_path)))
    a = tmp_path / "a"
    proc = _train(cfg_file, a, 2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "accelerate.commands.launch" in proc.stderr and proc.stdout.count("[train] step=2 ") == 1  # rank 0 logs
    prov = json.loads((a / "student" / "provenance.json").read_text())
    assert prov["processes"] == 2 and prov["global_batch_size"] == 4 and prov["replicas_bit_identical"] is True
    assert [int(r["step"]) for r in _rows(a / "log.csv")] == [1, 2, 3]
    assert sorted(p.name for p in (a / "samples").glob("step-*")) == ["step-000000", "step-000002", "step-000003"]
    weights = load_file(str(a / "student" / "unet" / "diffusion_pytorch_model.safetensors"))
    init = zoo.load_unet(str(tiny_pipeline_dir)).state_dict()
    assert any(not torch.equal(init[k], weights[k]) for k in weights)
    ckpt = a / "checkpoints" / "checkpoint-2"
    assert json.loads((ckpt / "meta.json").read_text())["world_size"] == 2
    gens = torch.load(ckpt / "state.pt", weights_only=True)["gen_slots"]
    assert len(gens) == 2 and not torch.equal(gens[0], gens[1])  # each rank its own stream
    # crash after step 2, resume on 2 processes: the same student and log
    b = tmp_path / "b"
    shutil.copytree(a, b)
    shutil.rmtree(b / "student")
    shutil.rmtree(b / "checkpoints" / "checkpoint-3")
    proc = _train(cfg_file, b, 2)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert json.loads((b / "student" / "provenance.json").read_text())["resumed_from"] == 2
    for sub in ("unet", "unet_ema"):
        wa, wb = (load_file(str(r / "student" / sub / "diffusion_pytorch_model.safetensors")) for r in (a, b))
        assert all(torch.equal(wa[k], wb[k]) for k in wa), sub
    assert _rows(a / "log.csv") == _rows(b / "log.csv")
    # one process cannot resume a 2-process run at another global batch (2 x 2 then, 1 x 2 now); global_batch_size
    # is unset, so the config hash matches and the global batch itself refuses, naming both layouts and the fix.
    shutil.rmtree(b / "student")
    code, _, err = train_here(cfg_file, b)
    assert code == 2 and "written with a global batch of 4 (2 process(es) x batch_size 2 x 1" in err, err[-2000:]
    assert "this run's is 2 (1 x 2 x 1)" in err and "resume on 2 process(es)" in err
    assert not (b / "student").exists()
