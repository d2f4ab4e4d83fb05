"""Config validation: defaults filled, bad configs rejected with the key named."""
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def smoke() -> dict:
    """The smoke config as the workflow sees it: merged over config/default.yaml."""
    from sb2bench.plan.config import merged_yaml

    return merged_yaml(ROOT / "config" / "smoke.yaml")


def test_shipped_configs_validate_and_fill_defaults():
    cfg = load_config(ROOT / "config" / "smoke.yaml")
    assert cfg["models"]["teacher"] == "toy:sd-toy"
    assert cfg["toy"]["training"]["teacher"]["lr"] == 0.001  # default filled under a given block
    assert cfg["teacher_sampling"]["systems"][0]["scheduler"] == "ddim"  # defaults inside array items
    assert {s["name"]: s["kind"] for s in cfg["teacher_sampling"]["systems"]}["turbo-1step"] == "onestep"


def test_empty_config_gets_every_default():
    cfg = validate_config({"toy": {"hub": "retrain"}})
    assert cfg["world"] == "toy"
    assert cfg["teacher_sampling"]["shards"] == 2
    assert cfg["toy"]["eval_set"]["n_prompts"] == 500


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c.update(bogus=1), "<top level>"),
    (lambda c: c["toy"].update(hubb="x"), "toy"),
    (lambda c: c["teacher_sampling"].update(shards=0), "teacher_sampling.shards"),
    (lambda c: c["toy"]["training"]["teacher"].update(lr=-1), "toy.training.teacher.lr"),
    (lambda c: c["teacher_sampling"]["systems"][0].update(cfg="high"), "teacher_sampling.systems.0.cfg"),
    (lambda c: c["teacher_sampling"]["systems"][0].update(name="bad name/"), "teacher_sampling.systems.0.name"),
    (lambda c: c.update(world="moon"), "world"),
])
def test_bad_values_name_the_key(mutate, key):
    cfg = copy.deepcopy(smoke())
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert f"config key {key}:" in str(err.value)


def test_duplicate_system_names_rejected():
    cfg = smoke()
    cfg["teacher_sampling"]["systems"].append({"name": "turbo-1step"})
    with pytest.raises(ConfigError, match="duplicate system names"):
        validate_config(cfg)


def test_real_world_rejects_toy_models():
    with pytest.raises(ConfigError, match="models"):
        validate_config({"world": "real", "teacher_sampling": {"prompts": "p.jsonl"}})


def test_missing_shipped_toy_model_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("SB2BENCH_TOY_HUB", str(tmp_path))
    with pytest.raises(ConfigError, match="models.teacher.*toy:sd-toy"):
        validate_config({"toy": {"hub": "shipped"}})


def test_snakemake_rejects_bad_config_before_any_job(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1", "-s", str(ROOT / "Snakefile"),
         "--directory", str(tmp_path), "--configfile", str(ROOT / "config" / "smoke.yaml"),
         "--config", "teacher_sampling={'shards': 0}"],
        capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "shards" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()


def test_missing_local_model_folder_is_named(tmp_path):
    cfg = smoke()
    cfg["teacher_sampling"]["systems"][0]["pipeline"] = str(tmp_path / "no-such-pipeline")
    with pytest.raises(ConfigError, match=r"teacher_sampling.systems\[teacher-cfg1\].pipeline.*no-such-pipeline"):
        validate_config(cfg)


def test_empty_or_malformed_prompt_file_is_rejected_up_front(tmp_path):
    cfg = smoke()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cfg["teacher_sampling"]["prompts"] = str(empty)
    with pytest.raises(ConfigError, match="teacher_sampling.prompts.*empty.jsonl is empty"):
        validate_config(cfg)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a cat"}\n')
    cfg = smoke()  # validation fills and expands a config in place: start from the file again
    cfg["teacher_sampling"]["prompts"] = str(bad)
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        validate_config(cfg)


def test_reference_is_a_reserved_system_name():
    cfg = smoke()
    cfg["teacher_sampling"]["systems"][0]["name"] = "reference"
    with pytest.raises(ConfigError, match="reserved"):
        validate_config(cfg)


def _with_runs(tmp_path, runs, defaults=None):
    import yaml

    from sb2bench.plan.config import load_config

    path = tmp_path / "runs.yaml"
    path.write_text(yaml.safe_dump({"training": {"defaults": defaults or {}, "runs": runs}, "tables": [],
                                    "merges": [], "claims": [],
                                    "figures": {"trade_off": {"curve": [], "points": []}, "loss_curves": {"runs": []},
                                                "qualitative": {"systems": []}}}))
    return load_config(path)


def test_runs_become_systems_with_their_init_pipeline(tmp_path):
    from sb2bench.plan.runs import resolve_run, run_system

    cfg = _with_runs(tmp_path, [{"name": "sb", "init": "teacher", "config": {"ema_decay": None}},  # no EMA: its unet
                                {"name": "b", "init": "run:sb", "config": {"scheme": "lora", "ema_decay": 0.99}}])
    sb, b = cfg["training"]["runs"]
    assert run_system(cfg, sb, "results/toy")["pipeline"] == "toy:sd-toy"
    sys_b = run_system(cfg, b, "results/toy")
    assert sys_b["unet"] == "results/toy/runs/b/student" and sys_b["unet_subfolder"] == "ema"
    assert sys_b["pipeline"] == "toy:sd-toy"  # the components of b's init chain (sb <- teacher)
    rb = resolve_run(cfg, b, "results/toy")
    assert rb["student_init"] == "results/toy/runs/sb/student" and rb["student_init_subfolder"] == "unet"
    assert rb["prompts"] == "results/toy/data/train/prompts.jsonl" and rb["teacher"] == "toy:sd-toy"


def test_a_run_with_the_hps_loss_gets_the_evaluation_hps_scorer(tmp_path):
    from sb2bench.plan.runs import resolve_run

    cfg = _with_runs(tmp_path, [{"name": "h", "config": {"hps_loss_weight": 0.1}}, {"name": "plain"}])
    h, plain = (resolve_run(cfg, r, "results/toy") for r in cfg["training"]["runs"])
    assert (h["hps_model"], h["hps_checkpoint"], h["hps_version"]) == ("toy:clip-toy", None, "v2.1")
    assert not any(k.startswith("hps_") for k in plain)  # runs without it resolve (and hash) as before


@pytest.mark.parametrize("runs,match", [
    ([{"name": "a", "init": "run:nope"}], "run 'nope' is not declared"),
    ([{"name": "a", "init": "run:b"}, {"name": "b", "init": "run:a"}], "cycle"),
    ([{"name": "l", "config": {"scheme": "lora"}}, {"name": "x", "init": "run:l"}], "LoRA student"),
    ([{"name": "teacher-cfg4.5"}], "also name systems"),
    ([{"name": "a", "config": {"student_lr": -1}}], "student_lr"),
    ([{"name": "a", "config": {"clip_loss": "sideways"}}], "clip_loss"),
    ([{"name": "a", "config": {"lerning_rate": 1}}], "unknown key"),
])
def test_bad_runs_are_rejected_before_any_job(tmp_path, runs, match):
    from sb2bench.plan.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        _with_runs(tmp_path, runs)
