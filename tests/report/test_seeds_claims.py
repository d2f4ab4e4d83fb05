"""Training seeds: replicas per seed, tables with the mean and s.d. over seeds, and claims judged on noise."""
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.report.claims import check_better, check_claims, check_interior_best
from sb2bench.report.index import write_top_index, write_world_index
from sb2bench.report.result_tables import write_result_table
from sb2bench.report.tables import read_system

ROOT = Path(__file__).resolve().parents[2]
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
    assert "| a | 11.00 ± 1.41 (2 seeds) |" in md and "| b | 20.00 [19.50, 20.50] |" in md
    assert list(df["fid_n_seeds"]) == [2, 1] and df["fid_seed_sd"].iloc[0] == pytest.approx(2 ** 0.5)


REF = np.random.default_rng(0).normal(size=(300, 6))
BOOT = {"n_boot": 200, "level": 0.95, "seed": 0, "method": "basic"}


def scored(tmp_path, name, shift=0.0, clip_delta=0.0, noise_seed=0, n=200, jitter=0.0, jitter_seed=1):
    """A scored image set: metrics.json and per_image.npz, from features ``shift`` away from the reference
    (per-prompt structure shared by every system: the same prompts and noise) and per-image CLIP values."""
    from sb2bench.evaluate.score import write_per_image
    from sb2bench.evaluate.metrics.fid import fid_from_features

    base = np.random.default_rng(5).normal(size=(n, 6))  # the same prompts and noise for every system
    extra = np.random.default_rng(jitter_seed).normal(size=(n, 6)) * jitter
    gen = base + shift + extra
    clip = 0.7 + 0.1 * np.random.default_rng(6).random(n) + clip_delta + extra[:, 0] * 0.01
    folder = tmp_path / name
    folder.mkdir()
    rec = {"metrics": {"fid": fid_from_features(REF, gen), "clip_score": float(clip.mean())}, "n": n,
           "protocol": PROTOCOL}
    (folder / "metrics.json").write_text(json.dumps(rec))
    pairing = {"prompts_sha256": "p", "n": n, "noise_seed": noise_seed, "reference_sha256": "r", "protocol": "toy"}
    write_per_image(folder / "per_image.npz", [{"index": i} for i in range(n)], REF, gen,
                    {"clip_score": clip, "recall": np.ones(len(REF))}, pairing)
    return [str(folder / "metrics.json")]


def _better(metric="fid"):
    return {"id": "c", "kind": "better", "system": "a", "than": "b", "metric": metric, "text": "t"}


@pytest.mark.parametrize("b_shift,verdict", [(0.0, "inconclusive"), (0.6, "holds")])
def test_paired_fid_claim_verdicts(tmp_path, b_shift, verdict):
    src = {"a": scored(tmp_path, "a", shift=0.2), "b": scored(tmp_path, "b", shift=0.2 + b_shift)}
    v = check_better(_better(), src, BOOT)
    assert v.verdict == verdict and v.low <= v.difference <= v.high
    if b_shift == 0.0:  # identical systems: the difference is 0 on every resample
        assert v.difference == v.low == v.high == 0.0
    reversed_ = check_better({**_better(), "system": "b", "than": "a"}, src, BOOT)
    assert reversed_.verdict == ("inconclusive" if b_shift == 0.0 else "contradicted")
    assert reversed_.difference == pytest.approx(-v.difference)


def test_same_distribution_is_inconclusive_around_zero(tmp_path):
    src = {"a": scored(tmp_path, "a", jitter=0.3, jitter_seed=1), "b": scored(tmp_path, "b", jitter=0.3, jitter_seed=2)}
    for metric in ("fid", "clip_score"):
        v = check_better(_better(metric), src, BOOT)
        assert v.verdict == "inconclusive" and v.low < 0 < v.high, metric


def test_pairing_resolves_what_unpaired_intervals_cannot(tmp_path):
    """A small shift shared by every prompt: the paired interval is far narrower than the two intervals
    added in quadrature, and the claim holds."""
    from sb2bench.evaluate.metrics import bootstrap as bs

    src = {"a": scored(tmp_path, "a", clip_delta=0.004), "b": scored(tmp_path, "b")}
    v = check_better(_better("clip_score"), src, BOOT)
    assert v.verdict == "holds" and v.difference == pytest.approx(0.004)
    halves = [bs.bootstrap_mean(np.load(f"{tmp_path}/{s}/per_image.npz")["value_clip_score"], 200).half_width
              for s in "ab"]
    assert v.detectable < 0.1 * (halves[0] ** 2 + halves[1] ** 2) ** 0.5
    assert halves[0] > 0.004  # unpaired, the same data would have been inconclusive


def test_seed_replicas_are_paired_and_their_spread_widens_the_interval(tmp_path):
    src = {"a": {"seeds": [scored(tmp_path, f"a{i}", clip_delta=d) for i, d in enumerate([0.01, 0.0, 0.02])]},
           "b": scored(tmp_path, "b")}
    v = check_better(_better("clip_score"), src, BOOT)
    assert v.difference == pytest.approx(0.01) and "3 seed pairs" in v.method
    # t(0.975, 2) * sd / sqrt(3) = 4.303 * 0.01 / 1.732: the seeds, not the shared images, set the width
    assert v.detectable == pytest.approx(4.303 * 0.01 / 3 ** 0.5, rel=0.02) and v.verdict == "inconclusive"


def test_unpairable_systems_are_refused_naming_the_claim(tmp_path):
    src = {"a": scored(tmp_path, "a"), "b": scored(tmp_path, "b", noise_seed=1)}
    with pytest.raises(ValueError, match=r"claim c: .*noise_seed 0 vs 1"):
        check_better(_better(), src, BOOT)


def test_interior_best_claim(tmp_path):
    sweep = [{"lambda": lam, "source": scored(tmp_path, f"l{lam}", shift=sh)}
             for lam, sh in [(0.0, 0.5), (0.5, 0.1), (1.0, 0.6)]]
    v = check_interior_best({"id": "m", "merge": "ab", "metric": "fid", "text": "t"}, sweep, BOOT)
    assert v.verdict == "holds" and "λ = 0.5" in v.measured and "picked again" in v.method
    with pytest.raises(ValueError, match="interior"):
        check_interior_best({"id": "m", "merge": "ab", "metric": "fid", "text": "t"}, sweep[::2], BOOT)


def test_indexes_list_claims_and_outputs(tmp_path):
    src = {"a": scored(tmp_path, "a"), "b": scored(tmp_path, "b", shift=0.6)}
    claim = {"id": "c", "kind": "better", "system": "a", "than": "b", "metric": "fid", "text": "A beats B",
             "paper": "Table 2"}
    world = tmp_path / "reports" / "toy"
    world.mkdir(parents=True)
    write_world_index("toy", check_claims([claim], src, {}, BOOT), [{"path": "t1.md", "title": "Table one",
                                                               "section": "Tables"}], world / "index.md")
    text = (world / "index.md").read_text()
    assert "| A beats B | Table 2 |" in text and "**holds**" in text and "- [Table one](t1.md)" in text
    assert "95% paired basic bootstrap (centred), 200 resamples of 200 prompt images" in text
    (tmp_path / "reports" / "bench").mkdir()
    (tmp_path / "reports" / "bench" / "x.md").write_text("# Bench X\n")
    write_top_index(tmp_path / "reports", tmp_path / "reports" / "index.md")
    top = (tmp_path / "reports" / "index.md").read_text()
    assert "[sb2bench reports: toy world](toy/index.md)" in top and "[Bench X](bench/x.md)" in top


def test_index_marks_each_interval_with_its_own_method(tmp_path):
    """Claims of two interval methods: each row carries its method's footnote mark, each method is listed once."""
    src = {"a": scored(tmp_path, "a"), "b": scored(tmp_path, "b", shift=0.6)}
    sweep = [{"lambda": lam, "source": scored(tmp_path, f"l{lam}", shift=sh)}
             for lam, sh in [(0.0, 0.5), (0.5, 0.1), (1.0, 0.6)]]
    verdicts = [check_claims([{"id": "c", "kind": "better", "system": "a", "than": "b", "metric": "fid",
                               "text": "A beats B"}], src, {}, BOOT)[0],
                check_interior_best({"id": "m", "merge": "ab", "metric": "fid", "text": "merge wins"}, sweep, BOOT)]
    write_world_index("toy", verdicts, [], tmp_path / "index.md")
    text = (tmp_path / "index.md").read_text()
    row = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| A beats") or
           line.startswith("| merge wins")}
    assert "]¹ |" in row["| A beats B"] and "]² |" in row["| merge wins"]
    assert [line for line in text.splitlines() if line.startswith("- ")] == \
        [f"- ¹ {verdicts[0].method}.", f"- ² {verdicts[1].method}."]


@pytest.mark.parametrize("claim,match", [
    ({"kind": "better", "system": "nope", "than": "teacher-cfg4.5"}, r"claims\[c\].system"),
    ({"kind": "interior_best", "merge": "nope"}, r"claims\[c\].merge"),
])
def test_bad_claims_are_rejected_by_key(tmp_path, claim, match):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"claims": [{"id": "c", "text": "t", "metric": "fid", **claim}]}))
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_claim_on_systems_not_scored_on_the_same_noise_is_refused_naming_it(tmp_path):
    """Bad input: a teacher sampled with another seed cannot be paired with the students (seed 0)."""
    cfg = yaml.safe_load(open("config/default.yaml"))
    for s in cfg["teacher_sampling"]["systems"]:
        if s["name"] == "teacher-cfg4.5":
            s["seed"] = 7
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"claims\[title-student-beats-teacher\]: ab-0.5 and teacher-cfg4.5 are "
                                          r"not scored on the same prompts and noise \(noise_seed 0 vs 7\)"):
        load_config(path, base=False)


@pytest.mark.parametrize("override,match", [
    ({"claims": [{"id": "h", "text": "t", "kind": "better", "system": "turbo-1step", "than": "teacher-cfg4.5",
                  "metric": "hps_average"}]}, r"claims\[h\].metric: hps_average has no per-image values"),
    ({"evaluation": {"bootstrap": {"n_boot": 0}}}, r"evaluation.bootstrap.n_boot: 0, but claims"),
])
def test_claims_that_cannot_be_paired_are_refused(tmp_path, override, match):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(override))
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_scoring_key_follows_seed_and_subset():
    from sb2bench.plan.pairing import scoring_key

    cfg = {"teacher_sampling": {"prompts": "toy_eval"}, "toy": {"eval_set": {"n_prompts": 500, "seed": 0}}}
    assert scoring_key(cfg, {"seed": 0}) == {"prompts": "toy_eval", "n_prompts": 500, "seed": 0, "noise_seed": 0}
    assert scoring_key(cfg, {"seed": 3})["noise_seed"] == 3
    assert scoring_key(cfg, {"seed": 0}, 100)["n_prompts"] == 100


def test_subset_scores_every_system_on_it_and_pairs_whole_set_claims_on_the_whole_set(tmp_path):
    """evaluation.subset: every system is scored on the first n prompts, the whole-set systems on all of them
    too; a claim pairs on the whole set only when every system it compares was scored there."""
    from sb2bench.plan.pairing import full_set_systems, sampled_prompts, subset_size, whole_set_claim

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"evaluation": {"subset": {"n_prompts": 100, "full_systems": ["teacher-cfg4.5"]}}}))
    cfg = load_config(path)  # the title claim (ab-0.5 vs the teacher) pairs on the subset: not refused
    full = full_set_systems(cfg, {}, {})
    assert full == {"teacher-cfg4.5"} and subset_size(cfg) == 100
    assert sampled_prompts(cfg, "teacher-cfg4.5", full) is None and sampled_prompts(cfg, "ab-0.5", full) == 100
    assert not whole_set_claim(["ab-0.5", "teacher-cfg4.5"], full)
    full = full_set_systems({**cfg, "evaluation": {**cfg["evaluation"], "subset": {
        "n_prompts": 100, "full_systems": ["turbo-init"]}}}, {}, {"turbo-init": ["turbo-init-seed1"]})
    assert full == {"turbo-init", "turbo-init-seed1"}  # seed replicas follow their run
    assert whole_set_claim(["turbo-init", "turbo-init-seed1"], full)
    assert not whole_set_claim(["a"], set())
    path.write_text(yaml.safe_dump({"evaluation": {"subset": {"n_prompts": 100, "full_systems": ["teacher-cfg9"]}}}))
    with pytest.raises(ConfigError, match=r"evaluation.subset.full_systems: \['teacher-cfg9'\] are not configured"):
        load_config(path)
    path.write_text(yaml.safe_dump({"evaluation": {"subset": {"n_prompts": 6000}}}))
    with pytest.raises(ConfigError, match=r"evaluation.subset.n_prompts: 6000 is not below"):
        load_config(path)


def test_full_tier_pairs_table1_claims_on_the_whole_set():
    """The full tier's headline systems (teacher at cfg 4.5, toy turbo) are sampled on the whole set, so the
    Table 1 claims, which compare only them, pair there; the others on the 500-prompt subset. The default tier
    has no whole set."""
    from sb2bench.plan.pairing import full_set_systems, subset_size, whole_set_claim

    cfg = load_config(ROOT / "config" / "toy_full.yaml")
    full = full_set_systems(cfg, {}, {})
    whole = {c["id"] for c in cfg["claims"] if c["kind"] == "better" and whole_set_claim([c["system"], c["than"]], full)}
    assert whole == {"turbo-sharper", "turbo-less-diverse"} and subset_size(cfg) == 500
    default = load_config()
    assert full_set_systems(default, {}, {}) == set() and subset_size(default) is None


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
