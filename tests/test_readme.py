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


def test_paper_config_validates():
    cfg = load_config(ROOT / "config" / "paper.yaml")
    assert cfg["world"] == "real" and cfg["teacher_sampling"]["systems"][3]["kind"] == "onestep"
