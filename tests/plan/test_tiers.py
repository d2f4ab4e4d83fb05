"""The toy world's two tiers: the full tier is the default plus a few keys, and each writes its own reports."""
from pathlib import Path

import pandas as pd

from sb2bench.plan.config import load_config
from sb2bench.plan.paths import reports_dir, results_dir
from sb2bench.report.index import write_world_index

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "config" / "toy_full.yaml"


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_full_tier_differs_from_the_default_only_in_its_documented_keys():
    default_cfg, full_cfg = load_config(), load_config(FULL)
    default, full = _flat(default_cfg), _flat(full_cfg)
    changed = {k for k in default.keys() | full.keys() if default.get(k) != full.get(k)}
    assert changed == {"toy.eval_set.n_prompts", "evaluation.subset.n_prompts", "evaluation.subset.full_systems",
                       "training.seed_replicas", "training.runs", "report.tier", "report.note"}
    # training.runs differ only by the seed replicas: the runs themselves (first seeds) are the same, so reused
    first_seeds = [r for r in full_cfg["training"]["runs"] if not r.get("replica_of")]
    assert first_seeds == default_cfg["training"]["runs"]
    assert {r["name"] for r in full_cfg["training"]["runs"] if r.get("replica_of")} == {
        f"{n}-seed{s}" for n in ("swiftbrush", "turbo-init", "clip-clamped") for s in (1, 2)}
    assert (full["toy.eval_set.n_prompts"], default["toy.eval_set.n_prompts"]) == (12000, 500)
    assert full["training.seed_replicas"] and not default["training.seed_replicas"]


def test_tiers_share_results_but_not_reports():
    default, full = load_config(), load_config(FULL)
    assert reports_dir(default) == "reports/toy" and reports_dir(full) == "reports/toy_full"
    assert results_dir(default["world"]) == results_dir(full["world"]) == "results/toy"


def test_index_names_its_tier_and_note(tmp_path):
    out = tmp_path / "index.md"
    write_world_index("toy", [], [], out, tier="toy_full", note="The claims of record.")
    lines = out.read_text().splitlines()
    assert lines[0] == "# sb2bench reports: toy world, tier toy_full" and "The claims of record." in lines
    write_world_index("toy", [], [], out)
    assert out.read_text().splitlines()[:2] == ["# sb2bench reports: toy world", ""]


def test_committed_tiers_have_the_same_tables():
    """Both tiers' committed reports show every table of the config with the same rows and columns."""
    tables = sorted(p.name for p in (ROOT / "reports" / "toy").glob("table*.csv"))
    assert tables == sorted(p.name for p in (ROOT / "reports" / "toy_full").glob("table*.csv")) and tables
    for name in tables:
        a, b = pd.read_csv(ROOT / "reports" / "toy" / name), pd.read_csv(ROOT / "reports" / "toy_full" / name)
        assert list(a.columns) == list(b.columns) and list(a.iloc[:, 0]) == list(b.iloc[:, 0]), name
