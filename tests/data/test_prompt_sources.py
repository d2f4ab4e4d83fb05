"""sb2bench prompts-build: JourneyDB annotations (.jsonl inside .tgz) and LAION parquet files become the project's
prompt JSONL, deduplicated in a fixed order with a manifest; a missing column or file is refused by name."""
import json

import pandas as pd
import pytest
import yaml

from sb2bench.cli import main
from sb2bench.plan.config import ConfigError, load_config
from sb2bench.data.prompt_sources import PromptSourceError, Source, build_prompts, configured_builds
from sb2bench._infra.hashing import sha256_file
from sb2bench.data.prompts import read_prompts


def _build(tmp_path, name, args):
    out = tmp_path / "out" / f"{name}.jsonl"
    assert main(["prompts-build", *args, "--out", str(out)], warm=False) == 0
    return out, json.loads(out.with_name(f"{name}.manifest.json").read_text())


def test_builds_all_three_training_prompt_files(tmp_path, prompt_sources):
    src = prompt_sources(tmp_path)
    parquet = lambda name: [str(src[name] / "*.parquet")]  # noqa: E731  (a glob: matches sorted)
    jdb, m_jdb = _build(tmp_path, "journeydb", ["--journeydb", str(src["journeydb"])])
    assert [r["caption"] for r in read_prompts(jdb)] == ["a castle on a hill, oil painting",
                                                         "neon city at night --ar 16:9", "a cat in a hat"]
    s = m_jdb["sources"][0]
    assert (s["rows"], s["empty"], s["duplicates"], s["kept"]) == (5, 1, 1, 3) and m_jdb["n_prompts"] == 3
    assert m_jdb["sha256"] == sha256_file(jdb) and s["files"][0]["sha256"] == sha256_file(src["journeydb"])

    both, m_both = _build(tmp_path, "journeydb_laion",
                          ["--journeydb", str(src["journeydb"]), "--laion", *parquet("laion"), "--laion-max", "2"])
    rows = read_prompts(both)
    assert [r["index"] for r in rows] == list(range(5))  # one index per prompt, in order
    assert [(r["source"], r["caption"]) for r in rows[3:]] == [("laion", "A photo of a dog"),
                                                               ("laion", "sunset over the sea")]
    laion = m_both["sources"][1]
    # "a cat in a hat" is already a JourneyDB prompt; the second "A photo of a dog" is a duplicate; None is empty
    assert (laion["rows"], laion["empty"], laion["duplicates"], laion["kept"]) == (5, 1, 2, 2)
    assert [f["path"].rsplit("/", 1)[1] for f in laion["files"]] == ["part-00000.parquet", "part-00001.parquet"]

    aes, m_aes = _build(tmp_path, "laion_aesthetic", ["--laion", *parquet("laion_aesthetic"), "--score-column",
                                                      "AESTHETIC_SCORE", "--min-score", "6.25"])
    assert [r["caption"] for r in read_prompts(aes)] == ["A photo of a dog", "a cat in a hat"]
    a = m_aes["sources"][0]
    assert (a["below_score"], a["min_score"], a["score_column"]) == (1, 6.25, "AESTHETIC_SCORE")

    again, m_again = _build(tmp_path / "again", "journeydb_laion", ["--journeydb", str(src["journeydb"]), "--laion",
                                                                    *parquet("laion"), "--laion-max", "2"])
    assert m_again["sha256"] == m_both["sha256"]  # a fixed order: the same bytes every build


def test_plain_jsonl_and_gzip_read_like_the_archive(tmp_path):
    import gzip

    lines = "".join(json.dumps({"prompt": p}) + "\n" for p in ["b", "a", "b"])
    (tmp_path / "a.jsonl").write_text(lines)
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as f:
        f.write(lines)
    for name in ("a.jsonl", "a.jsonl.gz"):
        rows, counts = build_prompts([Source("journeydb", [str(tmp_path / name)], "prompt")])
        assert [r["caption"] for r in rows] == ["b", "a"] and counts[0].duplicates == 1


def test_missing_column_is_refused_naming_file_column_and_columns_present(tmp_path, prompt_sources):
    src = prompt_sources(tmp_path)
    f = src["laion"] / "part-00000.parquet"
    with pytest.raises(PromptSourceError) as exc:
        build_prompts([Source("laion", [str(f)], "caption")])
    msg = str(exc.value)
    assert str(f) in msg and "'caption'" in msg and "['URL', 'TEXT', 'AESTHETIC_SCORE']" in msg
    with pytest.raises(PromptSourceError, match="score column 'aesthetic'.*AESTHETIC_SCORE"):
        build_prompts([Source("laion", [str(f)], "TEXT", "aesthetic", 6.25)])
    with pytest.raises(PromptSourceError, match=r"no field 'text'.*'prompt'"):
        build_prompts([Source("journeydb", [str(src["journeydb"])], "text")])
    with pytest.raises(PromptSourceError, match="score column and a minimum score"):
        Source("laion", [str(f)], "TEXT", "AESTHETIC_SCORE", None)
    out = tmp_path / "x.jsonl"
    assert main(["prompts-build", "--laion", str(f), "--caption-column", "caption", "--out", str(out)], warm=False) == 2
    assert not out.exists()


def test_config_names_sources_and_refuses_missing_files(tmp_path, prompt_sources, monkeypatch):
    src = prompt_sources(tmp_path)
    monkeypatch.chdir(tmp_path)
    blocks = {"journeydb": {"files": [str(src["journeydb"])]},
              "laion": {"files": [str(src["laion"] / "*.parquet")], "max_prompts": 2},
              "laion_aesthetic": {"files": [str(src["laion_aesthetic"] / "*.parquet")],
                                  "score_column": "AESTHETIC_SCORE", "min_score": 6.25}}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"training": {"prompt_sources": blocks}}))
    builds = configured_builds(load_config(cfg))
    assert sorted(builds) == [f"data/train/{n}.jsonl" for n in ("journeydb", "journeydb_laion", "laion_aesthetic")]
    assert [s.name for s in builds["data/train/journeydb_laion.jsonl"]] == ["journeydb", "laion"]
    blocks["laion"]["files"] = ["data/nowhere/*.parquet"]
    cfg.write_text(yaml.safe_dump({"training": {"prompt_sources": blocks}}))
    with pytest.raises(ConfigError, match=r"training.prompt_sources.laion.files: data/nowhere/\*.parquet matches no"):
        load_config(cfg)
    blocks["laion"]["files"] = [str(src["laion"] / "*.parquet")]
    blocks["laion_aesthetic"]["score_column"] = "aesthetic"  # a wrong column: refused before any job
    cfg.write_text(yaml.safe_dump({"training": {"prompt_sources": blocks}}))
    with pytest.raises(ConfigError, match=r"training.prompt_sources.laion_aesthetic: .*part-00000.parquet: no score column 'aesthetic'.*AESTHETIC_SCORE"):
        load_config(cfg)


def test_parquet_fixture_is_real_parquet(tmp_path, prompt_sources):
    src = prompt_sources(tmp_path)
    assert list(pd.read_parquet(src["laion_aesthetic"] / "part-00001.parquet")["AESTHETIC_SCORE"]) == [6.5, 5.0]
