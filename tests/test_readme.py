"""The README documents every config key and the two set-up commands that CI runs."""
from pathlib import Path

from sb2bench.config import load_config, schema_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_config_table_in_readme_matches_schema():
    assert schema_table() in README, "regenerate the README table with `sb2bench config-doc`"


def test_setup_commands_present_and_ci_runs_the_test_command():
    assert "bash scripts/setup.sh && . .venv/bin/activate && snakemake --cores all" in README
    assert "bash scripts/setup.sh && . .venv/bin/activate && python -m pytest" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup.sh" in ci and "python -m pytest" in ci and "HF_HUB_OFFLINE=1" in ci


def test_paper_config_validates_once_its_prompt_file_exists(tmp_path):
    import pytest

    from sb2bench.config import ConfigError

    with pytest.raises(ConfigError, match="teacher_sampling.prompts"):
        load_config(ROOT / "config" / "paper.yaml")
    prompts = tmp_path / "coco30k.jsonl"
    prompts.write_text('{"index": 0, "caption": "a cat"}\n')
    override = tmp_path / "override.yaml"
    override.write_text(f"teacher_sampling: {{prompts: {prompts}}}\n")
    cfg = load_config(ROOT / "config" / "paper.yaml", override)
    assert cfg["world"] == "real" and cfg["teacher_sampling"]["systems"][3]["kind"] == "onestep"
