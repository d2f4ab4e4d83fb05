"""config/paper.yaml, the paper-scale config: it validates once its data exist (local stand-ins here), declares
every SBv2 table, merge and claim, resolves every training run to the paper's hyperparameters -- no toy value of
config/default.yaml (which it is merged over) leaks in -- and its DAG plans a training job for every run."""
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sb2bench.data.prompt_sources import configured_builds
from sb2bench.evaluate.metrics.hps import HPS_VERSIONS
from sb2bench.evaluate.protocol import HPS_STYLES
from sb2bench.plan.config import load_config
from sb2bench.plan.runs import resolve_run, uses_shared_reg_pairs
from sb2bench.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "config" / "paper.yaml"
DEFAULT = ROOT / "config" / "default.yaml"
RESULTS = "results/real"

JDB, JDB_LAION = "data/train/journeydb.jsonl", "data/train/journeydb_laion.jsonl"
STEPS_1_3M, STEPS_3_3M = 20313, 51563  # one pass over 1.3M / 3.3M prompts at batch 64
LORA = {"efficient", "efficient-clip", "model-b", "model-b-hps", "model-b-reg", "sb-init-lora"}
CLIP = {"efficient-clip", "model-b", "model-b-hps", "model-b-reg", "sb-init-lora", "clip-clamped", "clip-unclamped"}
RUNS_3_3M = {"model-a", "model-b", "model-b-hps", "model-a-reg", "model-b-reg", "sb-init-full", "sb-init-lora"}
RUNS = {"swiftbrush", "turbo-init", "efficient", "clip-unclamped"} | LORA | CLIP | RUNS_3_3M


def _localise(node, root: Path):
    """The config with every local path (data/...) under ``root``; nothing else changes."""
    if isinstance(node, dict):
        return {k: _localise(v, root) for k, v in node.items()}
    if isinstance(node, list):
        return [_localise(v, root) for v in node]
    if isinstance(node, str) and node.startswith("data/"):
        return str(root / node)
    return node


def _leaves(d: dict, prefix: str = ""):
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def _prompt_files(raw: dict) -> set[str]:
    t = raw["training"]
    return {t["prompts"], t["reg_pairs"]["prompts"]} | {r["config"]["prompts"] for r in t["runs"]
                                                         if "prompts" in r.get("config", {})}


@pytest.fixture(scope="module")
def paper(tmp_path_factory, prompt_sources):
    """(folder, copy of paper.yaml with its paths in that folder, raw paper.yaml) with stand-ins for its data: the
    training prompts' datasets as distributed (the DAG builds the prompt files) and a dataset.json of its shape."""
    root = tmp_path_factory.mktemp("paper")
    raw = yaml.safe_load(PAPER.read_text())
    ev = raw["evaluation"]
    coco = root / ev["coco"]["root"]
    (coco / "val2014").mkdir(parents=True)
    (coco / "annotations").mkdir()
    (coco / "annotations" / "captions_val2014.json").write_text(json.dumps({"images": [], "annotations": []}))
    (root / ev["coco"]["dataset_json"]).write_text(json.dumps({"labels": [["00000/img00000000.png", "a cat"]]}))
    ev["coco"]["dataset_json_sha256"] = hashlib.sha256((root / ev["coco"]["dataset_json"]).read_bytes()).hexdigest()
    (root / raw["models"]["feature_net"]).write_bytes(b"")
    (root / ev["hps"]["checkpoint"]).mkdir(parents=True)
    (root / ev["hps"]["checkpoint"] / HPS_VERSIONS[ev["hps"]["version"]]).write_bytes(b"")
    (root / ev["hps"]["benchmark"]).mkdir(parents=True, exist_ok=True)
    for style in HPS_STYLES:
        (root / ev["hps"]["benchmark"] / f"{style}.json").write_text(json.dumps([f"a {style} prompt"]))
    prompt_sources(root)
    assert _prompt_files(raw) == set(configured_builds({"training": raw["training"]}))  # all three are built
    copy = root / "paper_local.yaml"
    copy.write_text(yaml.safe_dump(_localise(raw, root), allow_unicode=True, sort_keys=False))
    return root, copy, raw


def test_paper_config_validates_once_its_data_exist(paper):
    _, copy, _ = paper
    cfg = load_config(copy)
    assert cfg["world"] == "real" and cfg["evaluation"]["protocol"] == "sbv2"
    assert cfg["evaluation"]["coco"]["n_prompts"] == 30000 and cfg["evaluation"]["hps"]["n_per_style"] is None
    assert [s["name"] for s in cfg["teacher_sampling"]["systems"]] == ["sd21-cfg2", "sd21-cfg4.5", "sd21-cfg7.5",
                                                                       "sd-turbo"]


def test_paper_config_overrides_every_toy_value(paper):
    """Every key the toy default sets (lists included) is set again in paper.yaml, so none is inherited."""
    _, _, raw = paper
    default = yaml.safe_load(DEFAULT.read_text())
    default.pop("toy", None)  # the toy world's own block: unused in the real world
    missing = sorted(set(_leaves(default)) - set(_leaves(raw)))
    assert not missing, f"config/paper.yaml inherits these toy values from config/default.yaml: {missing}"
    assert not [v for v in json.dumps(raw).split('"') if v.startswith("toy:")]


def test_paper_config_declares_every_table_merge_and_claim(paper):
    _, copy, raw = paper
    cfg = load_config(copy)
    tables = {t["id"]: t for t in cfg["tables"]}
    expected = [f"table{i}" for i in (1, 2, 3, 4, 5, 6, 7, 9)]
    assert sorted(tables) == expected
    assert all(tables[t]["paper_table"] == f"sbv2_t{t[-1]}" for t in expected)
    rows = {t: {r.get("system") for r in tables[t]["rows"]} - {None} for t in tables}
    assert {"ab-0.5", "ab-reg-0.5"} <= rows["table3"] and {"ab-0.5", "ab-reg-0.5"} <= rows["table5"]
    assert "sb-init-0.5" in rows["table7"] and "model-b-hps" in rows["table9"]
    paper_only = {r["paper_row"] for r in tables["table3"]["rows"] if not r.get("system")}
    assert {"stylegan_t", "gigagan", "ufogen", "dmd", "instaflow_0.9b"} <= paper_only
    assert {r["name"] for r in cfg["training"]["runs"]} == RUNS
    merges = {m["name"]: m for m in cfg["merges"]}
    assert set(merges) == {"turbo-sb", "ab", "ab-reg", "sb-init"}
    assert merges["ab"]["lambdas"] == [0.0, 0.25, 0.5, 0.75, 1.0] and merges["sb-init"]["lambdas"] == [0.5]
    assert (merges["ab"]["a"], merges["ab"]["b"]) == ("run:model-a", "run:model-b")
    assert merges["turbo-sb"]["b"] == cfg["models"]["turbo"]
    default = yaml.safe_load(DEFAULT.read_text())
    assert [c["id"] for c in cfg["claims"]] == [c["id"] for c in default["claims"]]
    assert [s["system"] for s in cfg["timing"]["systems"]] == ["sd21-cfg4.5", "sd-turbo", "ab-0.5"]


def test_every_run_resolves_to_the_paper_hyperparameters(paper):
    _, copy, raw = paper
    root = paper[0]
    cfg = load_config(copy)
    for run in cfg["training"]["runs"]:
        name = run["name"]
        c = TrainConfig.from_dict(resolve_run(cfg, run, RESULTS))
        assert c.teacher == "stabilityai/stable-diffusion-2-1-base", name
        assert c.student_lr == 1e-6 and c.batch_size == 16 and c.teacher_cfg == 4.5, name
        assert c.student_optimizer_lr == 1e-6, name  # SBv2 §5.1 states one lr for both schemes
        assert (c.lora_rank, c.lora_alpha, c.lora_lr, c.lora_cfg) == (64, 128.0, 1e-3, 4.5), name
        assert c.lora_warmup_steps == 0 and c.lora_updates_per_step == 1, name
        assert (c.student_lora_rank, c.student_lora_alpha) == (256, 512.0), name
        assert (c.clip_tau, c.clip_weight) == (0.35, 0.1), name
        assert c.scheme == ("lora" if name in LORA else "full"), name
        assert c.max_steps == (STEPS_3_3M if name in RUNS_3_3M else STEPS_1_3M), name
        assert c.prompts == str(root / (JDB_LAION if name in RUNS_3_3M else JDB)), name
        if name in CLIP:
            assert c.clip_loss in ("clamped", "unclamped") and c.clip_model.startswith("ViT-B-32:"), name
            tiny = None if name.startswith("clip-") else "madebyollin/taesd"  # Table 6's rows decode with the SD VAE
            assert c.clip_decoder == tiny and c.clip_schedule == ("constant" if name.startswith("clip-") else "linear")
        else:
            assert c.clip_loss == "none", name
        assert (c.hps_loss_weight > 0) == (name == "model-b-hps"), name
        assert (c.reg_weight > 0) == name.endswith("-reg") == uses_shared_reg_pairs(cfg, run), name
        init = {"swiftbrush": "stabilityai/stable-diffusion-2-1-base", "sb-init-full": f"{RESULTS}/runs/swiftbrush/student",
                "sb-init-lora": f"{RESULTS}/runs/swiftbrush/student"}.get(name, "stabilityai/sd-turbo")
        assert c.student_init == init, name
    hps = TrainConfig.from_dict(resolve_run(cfg, next(r for r in cfg["training"]["runs"] if r["name"] == "model-b-hps"),
                                            RESULTS))
    assert hps.hps_model == "ViT-H-14" and hps.hps_checkpoint == str(root / "data/hps")
    assert cfg["training"]["reg_pairs"]["n"] == 200000


def test_paper_dag_dry_run_plans_every_training_run(paper):
    root, copy, _ = paper
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(root), "--configfile", str(copy)],
                         capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    planned = set(re.findall(r"results/real/runs/([^/\s]+)/student", out))
    assert planned >= RUNS, sorted(RUNS - planned)
    assert re.search(r"^train_run\s+%d\b" % len(RUNS), out, re.M), out[-3000:]
    assert "reg_pairs" in out and "merge_students" in out
    assert re.search(r"^prompts_build\s+3\b", out, re.M) and re.search(r"^coco_prompts\s+1\b", out, re.M), out[-3000:]


def test_paper_dag_refuses_a_gpu_count_that_cannot_keep_the_global_batch(paper):
    """3 GPUs per training job: 64 is no multiple of 3 x 16, so the workflow stops at parse time, before any job,
    naming the runs and the numbers (1, 2 and 4 GPUs plan 64: tests/plan/test_plan.py)."""
    root, copy, _ = paper
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(root), "--configfile", str(copy), "--resources", "gpu=3"],
                         capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "cannot keep their global batch on 3 process(es)" in out, out[-3000:]
    assert "'global_batch_size': 64 is not a multiple of 3 process(es) x batch_size 16 = 48" in out
    assert "train_run" not in out.split("cannot keep")[0]  # no job was planned



def _snakemake(root: Path, copy: Path, *args: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "SB2BENCH_WARM": "0"}
    run = subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "1", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(root), "--configfile", str(copy)],
                         capture_output=True, text=True, env=env, timeout=300)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-4000:]
    return out


def test_paper_dag_builds_the_training_prompt_files_then_plans_on_them(paper):
    """Run last in this module: it builds the three prompt files the other tests see as missing."""
    root, copy, raw = paper
    names = ("journeydb", "journeydb_laion", "laion_aesthetic")
    # the weights are not here: building data alone needs none, so the up-front weights check is off; the three
    # torch-free jobs run cold (a warm server would import torch and diffusers for them alone; the warm path:
    # tests/infra/test_warm.py and the DAG tests)
    cold = root / "paper_local_cold.yaml"
    cold_cfg = yaml.safe_load(copy.read_text())
    cold_cfg.setdefault("resources", {})["warm_interpreter"] = False
    cold.write_text(yaml.safe_dump(cold_cfg, allow_unicode=True, sort_keys=False))
    _snakemake(root, cold, *[str(root / "data" / "train" / f"{n}.jsonl") for n in names], "--config",
               "check_weights=False")
    counts = {n: len((root / "data" / "train" / f"{n}.jsonl").read_text().splitlines()) for n in names}
    assert counts == {"journeydb": 3, "journeydb_laion": 5, "laion_aesthetic": 2}  # tests/conftest.py's stand-ins
    manifest = json.loads((root / "data" / "train" / "laion_aesthetic.manifest.json").read_text())
    assert manifest["sources"][0]["min_score"] == 6.25 and manifest["sources"][0]["score_column"] == "AESTHETIC_SCORE"
    out = _snakemake(root, copy, "-n")
    assert "prompts_build" not in out and re.search(r"^train_run\s+%d\b" % len(RUNS), out, re.M), out[-3000:]
