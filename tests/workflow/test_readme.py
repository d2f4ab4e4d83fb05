"""The README documents every config key and the two set-up commands that CI runs."""
from pathlib import Path

import pytest

from sb2bench.plan.config import load_config, schema_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_config_table_in_readme_matches_schema():
    assert schema_table() in README, "regenerate the README table with `sb2bench config-doc`"


def test_training_run_keys_in_readme_match_the_run_config():
    from sb2bench.train.config import run_keys_table

    assert run_keys_table() in README, "regenerate the README table with sb2bench.train.config.run_keys_table()"


def test_setup_commands_present_and_ci_runs_the_test_command():
    assert "bash scripts/setup.sh && . .venv/bin/activate && snakemake --cores all" in README
    assert "bash scripts/setup.sh && . .venv/bin/activate && python -m pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci and "python -m pytest" in ci and "HF_HUB_OFFLINE=1" in ci


@pytest.mark.parametrize("name", ["paper", "eval_published"])
def test_paper_configs_validate_once_their_data_exist(tmp_path, name, monkeypatch):
    import json

    import yaml

    from sb2bench.plan.errors import ConfigError

    with pytest.raises(ConfigError, match="evaluation.coco.root"):
        load_config(ROOT / "config" / f"{name}.yaml")
    for ckpt in ("swiftbrushv2/unet_ema", "swiftbrush/unet"):
        (tmp_path / "checkpoints" / ckpt).mkdir(parents=True)
    (tmp_path / "coco" / "val2014").mkdir(parents=True)
    (tmp_path / "coco" / "annotations").mkdir()
    (tmp_path / "coco" / "annotations" / "captions_val2014.json").write_text(json.dumps({"images": [], "annotations": []}))
    (tmp_path / "inception-2015-12-05.pt").write_bytes(b"")
    (tmp_path / "hps" / "benchmark").mkdir(parents=True)
    (tmp_path / "hps" / "HPS_v2.1_compressed.pt").write_bytes(b"")
    raw = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    training = raw.get("training", {})
    prompt_files = {training.get("prompts"), (training.get("reg_pairs") or {}).get("prompts")}
    prompt_files |= {r.get("config", {}).get("prompts") for r in training.get("runs", [])}
    monkeypatch.chdir(tmp_path)  # the configs' relative training-prompt paths now point here
    for f in filter(None, prompt_files):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).write_text('{"index": 0, "caption": "a photo of a cat"}\n')
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump({
        "models": {"feature_net": str(tmp_path / "inception-2015-12-05.pt")},
        "teacher_sampling": {"systems": [
            {**s, "unet": str(tmp_path / "checkpoints" / s["unet"].split("/")[-1])} if s.get("unet") else s
            for s in yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())["teacher_sampling"]["systems"]]},
        "evaluation": {"coco": {"root": str(tmp_path / "coco")},
                       "hps": {"checkpoint": str(tmp_path / "hps"), "benchmark": str(tmp_path / "hps" / "benchmark")}}}))
    cfg = load_config(ROOT / "config" / f"{name}.yaml", override)
    assert cfg["world"] == "real" and cfg["teacher_sampling"]["systems"][3]["kind"] == "onestep"
    assert cfg["evaluation"]["protocol"] == "sbv2" and cfg["evaluation"]["coco"]["n_prompts"] == 30000
