"""Merge sweeps in config: systems per λ, inputs resolved to student folders, bad entries rejected."""
import json

import pytest
import yaml

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.plan.merges import input_spec, merge_system_sweeps, merge_systems
from sb2bench.report.sweeps import write_sweep

RUNS = [{"name": "a"}, {"name": "b", "config": {"scheme": "lora"}}, {"name": "e", "config": {"ema_decay": 0.9}}]


def load(tmp_path, merges, runs=RUNS):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"training": {"runs": runs}, "merges": merges}))
    return load_config(path, base=False)  # a unit: this file alone, not over config/default.yaml


def test_each_lambda_is_a_system_reading_the_right_folders(tmp_path):
    cfg = load(tmp_path, [{"name": "ab", "a": "run:a", "b": "run:b", "lambdas": [0, 0.5, 1]}])
    systems = merge_systems(cfg, "results/toy")
    assert sorted(systems) == ["ab-0", "ab-0.5", "ab-1"]
    assert systems["ab-0.5"]["unet"] == "results/toy/merges/ab/lambda-0.5"
    # one job writes the sweep folder: every merged system's sampling waits on it, and reads its λ inside
    sweeps = merge_system_sweeps(cfg, "results/toy")
    assert sweeps == {name: "results/toy/merges/ab" for name in systems}
    assert all(systems[name]["unet"].startswith(sweeps[name] + "/") for name in systems)
    assert systems["ab-0.5"]["pipeline"] == "toy:sd-toy-turbo" and systems["ab-0.5"]["kind"] == "onestep"
    assert input_spec(cfg, "run:a", "results/toy") == "results/toy/runs/a/student/unet"
    assert input_spec(cfg, "run:b", "results/toy") == "results/toy/runs/b/student"  # LoRA: lora_config.json
    assert input_spec(cfg, "run:e", "results/toy") == "results/toy/runs/e/student/unet_ema"
    assert input_spec(cfg, "toy:sd-toy-turbo", "results/toy") == "toy:sd-toy-turbo"


@pytest.mark.parametrize("merge,match", [
    ({"name": "m", "a": "run:zz", "b": "run:a", "lambdas": [0.5]}, "run 'zz' is not declared"),
    ({"name": "m", "a": "run:a", "b": "/no/such/unet", "lambdas": [0.5]}, "does not exist"),
    ({"name": "m", "a": "run:a", "b": "run:b", "lambdas": [1.5]}, "lambdas"),
    ({"name": "m", "a": "run:a", "b": "run:b", "lambdas": []}, "lambdas"),
])
def test_bad_merges_are_rejected_with_the_entry_named(tmp_path, merge, match):
    with pytest.raises(ConfigError, match=match):
        load(tmp_path, [merge])


def test_table_may_name_a_merged_system(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"training": {"runs": RUNS},
                                    "merges": [{"name": "ab", "a": "run:a", "b": "run:b", "lambdas": [0.5]}],
                                    "tables": [{"id": "t", "metrics": ["fid"], "rows": [{"system": "ab-0.5"}]}]}))
    assert load_config(path, base=False)["tables"][0]["rows"][0]["system"] == "ab-0.5"


def test_sweep_report_finds_the_best_lambda(tmp_path):
    points = []
    for lam, fid in [(0.0, 12.0), (0.5, 9.0), (1.0, 11.0)]:
        f = tmp_path / f"{lam}.json"
        f.write_text(json.dumps({"metrics": {"fid": fid, "clip_score": 0.3, "precision": 0.5, "recall": 0.5},
                                 "n": 8, "protocol": {"name": "toy", "version": 2}}))
        points.append({"lambda": lam, "metrics": [str(f)]})
    df = write_sweep("A ↔ B", points[::-1], tmp_path / "sweep")
    assert list(df["lambda"]) == [0.0, 0.5, 1.0]
    md = (tmp_path / "sweep.md").read_text()
    assert "Best FID at λ = 0.5 (9.00); an interior λ beats both ends" in md
    assert (tmp_path / "sweep.png").stat().st_size > 1000 and (tmp_path / "sweep.svg").exists()
