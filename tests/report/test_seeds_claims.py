"""Training seeds: replicas per seed, tables with the mean and s.d. over seeds, and claims judged on noise."""
import json

import pytest
import yaml

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.report.claims import check_better, check_claims, check_interior_best
from sb2bench.report.index import write_top_index, write_world_index
from sb2bench.report.result_tables import write_result_table
from sb2bench.report.tables import read_system
from sb2bench.plan.runs import expand_seed_replicas, seed_groups

PROTOCOL = {"name": "toy", "version": 2, "prompts": "p", "reference": "r"}


def metrics(tmp_path, name, fid, clip, half=None):
    rec = {"metrics": {"fid": fid, "clip_score": clip}, "n": 10, "protocol": PROTOCOL}
    if half is not None:
        rec["intervals"] = {"fid": {"low": fid - half, "high": fid + half, "level": 0.95}}
    f = tmp_path / f"{name}.json"
    f.write_text(json.dumps(rec))
    return [str(f)]


def toy_config(**training):
    return {"world": "toy", "training": {"defaults": {}, "runs": [], **training}}


def test_seeds_expand_into_replica_runs_with_their_seed():
    cfg = toy_config(runs=[{"name": "r", "init": "turbo", "config": {"x": 1}, "seeds": [3, 4, 5]},
                           {"name": "plain", "init": "turbo", "config": {}}])
    runs = expand_seed_replicas(cfg)
    assert [r["name"] for r in runs] == ["r", "r-seed4", "r-seed5", "plain"]
    assert [r["config"].get("seed") for r in runs] == [3, 4, 5, None]
    assert all(r["config"]["x"] == 1 for r in runs[:3])
    assert seed_groups(runs) == {"r": ["r", "r-seed4", "r-seed5"]}
    cfg["training"]["seed_replicas"] = False
    assert [r["name"] for r in expand_seed_replicas(cfg)] == ["r", "plain"]


def test_seed_given_twice_is_rejected():
    cfg = toy_config(runs=[{"name": "r", "init": "turbo", "config": {"seed": 1}, "seeds": [0, 1]}])
    with pytest.raises(ConfigError, match=r"training.runs\[r\]"):
        expand_seed_replicas(cfg)


def test_replicas_are_validated_like_runs(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"training": {"runs": [{"name": "r", "seeds": [0, 1]},
                                                          {"name": "r-seed1"}]}}))
    with pytest.raises(ConfigError, match="duplicate run names"):
        load_config(path)


def test_read_system_averages_seeds_and_keeps_first_seed_interval(tmp_path):
    src = {"seeds": [metrics(tmp_path, "s0", 10.0, 0.5, half=1.0), metrics(tmp_path, "s1", 12.0, 0.6),
                     metrics(tmp_path, "s2", 14.0, 0.7)]}
    sm = read_system(src)
    assert sm.values["fid"] == pytest.approx(12.0) and sm.seed_sd["fid"] == pytest.approx(2.0)
    assert sm.n_seeds == 3 and sm.intervals["fid"]["low"] == 9.0


def test_table_shows_mean_and_sd_over_seeds(tmp_path):
    table = {"id": "t", "metrics": ["fid"], "rows": [{"system": "a", "label": "a"}, {"system": "b", "label": "b"}]}
    files = {"a": {"seeds": [metrics(tmp_path, "a0", 10.0, 0.5), metrics(tmp_path, "a1", 12.0, 0.5)]},
             "b": metrics(tmp_path, "b", 20.0, 0.5, half=0.5)}
    df = write_result_table(table, files, "toy", tmp_path)
    md = (tmp_path / "t.md").read_text()
    assert "| a | 11.00 ± 1.41 (2 seeds) |" in md and "| b | 20.00 ± 0.50 |" in md
    assert list(df["fid_n_seeds"]) == [2, 1] and df["fid_seed_sd"].iloc[0] == pytest.approx(2 ** 0.5)


@pytest.mark.parametrize("b_fid,verdict", [(20.0, "holds"), (10.5, "same direction, within noise"),
                                           (9.5, "not reproduced (opposite direction, within noise)"),
                                           (2.0, "contradicted")])
def test_better_claim_verdicts_against_bootstrap_noise(tmp_path, b_fid, verdict):
    src = {"a": metrics(tmp_path, "a", 10.0, 0.5, half=1.0), "b": metrics(tmp_path, "b", b_fid, 0.5, half=1.0)}
    v = check_better({"id": "c", "kind": "better", "system": "a", "than": "b", "metric": "fid", "text": "t"}, src)
    assert v.verdict == verdict and v.difference == pytest.approx(b_fid - 10.0)
    assert v.noise == pytest.approx(2 ** 0.5)


def test_better_claim_uses_seed_standard_error_when_both_sides_have_seeds(tmp_path):
    src = {"a": {"seeds": [metrics(tmp_path, f"a{i}", v, 0.8) for i, v in enumerate([9.0, 10.0, 11.0])]},
           "b": {"seeds": [metrics(tmp_path, f"b{i}", v, 0.7) for i, v in enumerate([12.0, 13.0, 14.0])]}}
    v = check_better({"id": "c", "system": "a", "than": "b", "metric": "fid", "text": "t", "kind": "better"}, src)
    assert v.noise == pytest.approx((2 / 3) ** 0.5) and "seeds" in v.noise_kind and v.verdict == "holds"
    clip = check_better({"id": "c", "system": "a", "than": "b", "metric": "clip_score", "text": "t",
                         "kind": "better"}, src)
    assert clip.difference == pytest.approx(0.1)  # higher is better for CLIP


def test_interior_best_claim(tmp_path):
    sweep = [{"lambda": lam, "source": metrics(tmp_path, f"l{lam}", fid, 0.5, half=0.2)}
             for lam, fid in [(0.0, 10.0), (0.5, 8.0), (1.0, 11.0)]]
    v = check_interior_best({"id": "m", "merge": "ab", "metric": "fid", "text": "t"}, sweep)
    assert v.verdict == "holds" and v.difference == pytest.approx(2.0)
    with pytest.raises(ValueError, match="interior"):
        check_interior_best({"id": "m", "merge": "ab", "metric": "fid", "text": "t"}, sweep[::2])


def test_indexes_list_claims_and_outputs(tmp_path):
    src = {"a": metrics(tmp_path, "a", 10.0, 0.5, half=1.0), "b": metrics(tmp_path, "b", 20.0, 0.5, half=1.0)}
    claim = {"id": "c", "kind": "better", "system": "a", "than": "b", "metric": "fid", "text": "A beats B",
             "paper": "Table 2"}
    world = tmp_path / "reports" / "toy"
    world.mkdir(parents=True)
    write_world_index("toy", check_claims([claim], src, {}), [{"path": "t1.md", "title": "Table one",
                                                               "section": "Tables"}], world / "index.md")
    text = (world / "index.md").read_text()
    assert "| A beats B | Table 2 |" in text and "**holds**" in text and "- [Table one](t1.md)" in text
    (tmp_path / "reports" / "bench").mkdir()
    (tmp_path / "reports" / "bench" / "x.md").write_text("# Bench X\n")
    write_top_index(tmp_path / "reports", tmp_path / "reports" / "index.md")
    top = (tmp_path / "reports" / "index.md").read_text()
    assert "[sb2bench reports: toy world](toy/index.md)" in top and "[Bench X](bench/x.md)" in top


@pytest.mark.parametrize("claim,match", [
    ({"kind": "better", "system": "nope", "than": "teacher-cfg4.5"}, r"claims\[c\].system"),
    ({"kind": "interior_best", "merge": "nope"}, r"claims\[c\].merge"),
])
def test_bad_claims_are_rejected_by_key(tmp_path, claim, match):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "c", "text": "t", "metric": "fid", **claim}]}))
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_benchmark_report_sums_stages_and_reads_only_the_listed_jobs(tmp_path):
    from sb2bench.report.benchmarks import write_benchmark_summary

    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, sec, rss in [("train/a", 10.0, 100.0), ("train/b", 5.0, 300.0), ("metrics/x/evaluate", 2.0, 50.0),
                          ("train/stale", 99.0, 999.0)]:
        f = tmp_path / "bench" / f"{rel}.tsv"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(head + f"{sec}\t0:00:10\t{rss}\t1\t1\t1\t0\t0\t50\t{sec}\n")
    listed = [str(tmp_path / "bench" / f"{r}.tsv") for r in ("train/a", "train/b", "metrics/x/evaluate", "train/gone")]
    jobs = write_benchmark_summary(tmp_path / "bench", tmp_path / "b.md", tmp_path / "b.csv", listed)
    assert sorted(jobs["job"]) == ["metrics/x/evaluate", "train/a", "train/b"]  # no stale file, no missing one
    md = (tmp_path / "b.md").read_text()
    assert "| train | 2 | 15 | 15 | 300 |" in md and "| all | 3 | 17 | 17 | 300 |" in md


def test_benchmark_report_takes_cpu_and_memory_of_warm_jobs_from_their_logs(tmp_path):
    """Snakemake measured only the thin client of a warm job: the worker's own figures in the log win."""
    from sb2bench.report.benchmarks import read_benchmarks
    from sb2bench._infra.rusage import RUSAGE_TAG

    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel in ("train/warm", "train/cold"):
        f = tmp_path / "bench" / f"{rel}.tsv"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(head + "12.0\t0:00:12\t30.0\t1\t1\t1\t0\t0\t50\t0.1\n")
    (tmp_path / "logs" / "train").mkdir(parents=True)
    (tmp_path / "logs" / "train" / "warm.log").write_text(
        "step 1\n" + RUSAGE_TAG + '{"cpu_seconds": 11.5, "max_rss_mb": 812.0}\n')
    (tmp_path / "logs" / "train" / "cold.log").write_text("no tag here\n")
    jobs = read_benchmarks(tmp_path / "bench", log_dir=tmp_path / "logs").set_index("job")
    assert jobs.loc["train/warm", ["cpu_seconds", "max_rss_mb", "measured_by"]].tolist() == [11.5, 812.0, "warm worker"]
    assert jobs.loc["train/cold", ["cpu_seconds", "max_rss_mb", "measured_by"]].tolist() == [0.1, 30.0, "snakemake"]
    assert jobs.loc["train/warm", "seconds"] == 12.0  # wall time stays Snakemake's
