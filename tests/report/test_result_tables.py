"""Config-declared tables: ours beside the paper's numbers, paper-only rows, Δ only in the real world."""
import json

import pytest
import yaml

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.report.result_tables import write_result_table

TABLE = {"id": "table1", "title": "T1", "paper_table": "sbv2_t1", "metrics": ["fid", "clip_score"],
         "rows": [{"system": "a", "paper_row": "sd21_cfg2"}, {"system": "b", "paper_row": None},
                  {"system": None, "paper_row": "swiftbrush"}]}


def metrics_file(tmp_path, name, fid, clip):
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps({"metrics": {"fid": fid, "clip_score": clip}, "n": 10,
                             "protocol": {"name": "sbv2", "version": 1, "prompts": "p", "reference": "r"}}))
    return [str(f)]


def test_paper_beside_ours_with_delta_in_the_real_world(tmp_path):
    files = {"a": metrics_file(tmp_path, "a", 10.0, 0.3), "b": metrics_file(tmp_path, "b", 20.0, 0.25)}
    df = write_result_table(TABLE, files, "real", tmp_path)
    assert list(df["fid_paper"][:1]) == [9.64] and list(df["fid_ours"][:2]) == [10.0, 20.0]
    md = (tmp_path / "table1.md").read_text()
    assert "| a | 9.64 | 10.00 | +0.36 | 0.310 | 0.300 | -0.010 |" in md
    assert "| b | – | 20.00 | – |" in md
    assert "SwiftBrush (paper only) | 15.46 | – | – |" in md
    assert "[SBv2 T1]" in md and "protocol `sbv2` v1" in md and "0.30" in md  # the prose/table note
    assert (tmp_path / "table1.csv").read_text().startswith("row,system,paper_row,fid_paper,fid_ours")
    assert r"\begin{tabular}" in (tmp_path / "table1.tex").read_text()


def test_toy_world_shows_no_delta(tmp_path):
    files = {"a": metrics_file(tmp_path, "a", 10.0, 0.3), "b": metrics_file(tmp_path, "b", 20.0, 0.25)}
    write_result_table(TABLE, files, "toy", tmp_path)
    md = (tmp_path / "table1.md").read_text()
    assert "Δ FID" not in md and "| a | 9.64 | 10.00 | 0.310 | 0.300 |" in md and "not on the paper's scale" in md


@pytest.mark.parametrize("row,match", [
    ({"system": "nope"}, "not a configured system"),
    ({"paper_row": "not_a_row"}, "not a row of 'sbv2_t1'"),
    ({}, "give a system, a paper_row"),
])
def test_bad_table_rows_are_rejected_by_name(tmp_path, row, match):
    cfg = {"tables": [{"id": "t", "paper_table": "sbv2_t1", "metrics": ["fid"], "rows": [row]}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_adding_a_config_row_adds_a_table_row(tmp_path):
    files = {"a": metrics_file(tmp_path, "a", 10.0, 0.3), "b": metrics_file(tmp_path, "b", 20.0, 0.25)}
    before = write_result_table(TABLE, files, "real", tmp_path)
    extra = {**TABLE, "rows": TABLE["rows"] + [{"system": "b", "paper_row": "sd_turbo", "label": "b as turbo"}]}
    after = write_result_table(extra, files, "real", tmp_path)
    assert len(after) == len(before) + 1
    assert "| b as turbo | 16.10 | 20.00 | +3.90 |" in (tmp_path / "table1.md").read_text()
