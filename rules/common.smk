# Shared helpers: config validation, paths, model-hub inputs. No logic lives in rules.
import json
import os
import re
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

sys.path.insert(0, workflow.basedir)
from sb2bench.plan.config import prepare_config  # noqa: E402
from sb2bench.data.prompt_sources import cli_args, configured_builds, expand_files  # noqa: E402
from sb2bench.evaluate.protocol import HPS_STYLES, protocol_block  # noqa: E402
from sb2bench.plan.paths import (  # noqa: E402
    lam_name, merge_sweep_dir, reg_pairs_dir, reports_dir, results_dir, student_dir, toy_cache_dir, toy_hub_dir,
    warmup_dir)
from sb2bench.plan.errors import ConfigError  # noqa: E402
from sb2bench.plan.runs import (  # noqa: E402
    lora_warmups, resolve_run, run_system, seed_groups, train_prompts, uses_shared_reg_pairs)
from sb2bench.train.warmup import warmup_job_config  # noqa: E402
from sb2bench.plan.merges import input_spec, merge_system_name, merge_system_sweeps, merge_systems  # noqa: E402
from sb2bench.plan.pairing import full_set_systems, sampled_prompts, subset_size, whole_set_claim  # noqa: E402
from sb2bench.plan.batch import plan_batches, train_gpus  # noqa: E402
from sb2bench.plan.weights import check_weights  # noqa: E402
from sb2bench.train.launch import launch_shell  # noqa: E402
from sb2bench._infra.warm import set_for_jobs as set_warm_for_jobs  # noqa: E402

prepare_config(config)  # seed replicas expanded, semantic checks and models checked, as outside Snakemake
# every model resolved offline before any job; all missing pieces listed with their fetch commands (a dry run warns)
if config["check_weights"]:
    check_weights(config, results_dir(config['world']), warn_only=workflow.output_settings.dryrun)

# Jobs' sb2bench commands fork a warm interpreter, except inside a SLURM job (the executor plugin parses this file
# again in every job): there the server's key would hold SLURM_JOB_ID & co., so each job would start a server of
# its own, pay the same imports and leave it running in the allocation (docs/slurm.md).
set_warm_for_jobs(config["resources"]["warm_interpreter"] and "SLURM_JOB_ID" not in os.environ)

WORLD = config["world"]
RESULTS = results_dir(WORLD)
REPORTS = reports_dir(config)
LOGS = f"logs/{WORLD}"
BENCH = f"benchmarks/{WORLD}"
TOY_HUB = toy_hub_dir()
TOY_CACHE = toy_cache_dir()
CONDA_ENV = "../envs/sb2bench.yaml"
HUB_FOLDERS = {
    "tokenizer": "tokenizer-toy",
    "vae": "vae-toy",
    "tiny_vae": "taesd-toy",
    "classifier": "classifier-toy",
    "feature_net": "inception-toy",
    "clip": "clip-toy",
    "teacher": "sd-toy",
    "turbo": "sd-toy-turbo",
}
HUB_DEPENDS = {"tiny_vae": ["vae"], "teacher": ["vae", "tokenizer"], "turbo": ["teacher"]}
RUNS = {r["name"]: r for r in config["training"]["runs"]}
SEED_GROUPS = seed_groups(config["training"]["runs"])
SYSTEMS = {s["name"]: s for s in config["teacher_sampling"]["systems"]}
SYSTEMS.update({name: run_system(config, r, RESULTS) for name, r in RUNS.items() if r["evaluate"]})
MERGES = {m["name"]: m for m in config["merges"]}
MERGE_SYSTEMS = merge_systems(config, RESULTS)
MERGE_SWEEPS = merge_system_sweeps(config, RESULTS)  # merged system -> the sweep folder its merge job writes
SYSTEMS.update(MERGE_SYSTEMS)
REFERENCE = "reference"  # pseudo-system: the evaluation set's reference renders
PROTOCOL = protocol_block(config["evaluation"]["protocol"])
TABLES = {t["id"]: t for t in config["tables"]}
CLAIMS = config["claims"]
COCO = config["evaluation"]["coco"]
COCO_ROOT = (COCO["root"] or "data/coco").rstrip("/")
HPS = config["evaluation"]["hps"]
HPS_METRICS = {"hps_anime", "hps_concept_art", "hps_painting", "hps_photo", "hps_average"}  # no torch at parse time
GPUS_PER_JOB = config["resources"]["gpus_per_job"]
GPUS_PER_TRAIN_JOB = config["resources"]["gpus_per_train_job"]
if GPUS_PER_TRAIN_JOB is None:
    GPUS_PER_TRAIN_JOB = GPUS_PER_JOB
TIMING = config["timing"]
GPU_MODEL = config["resources"]["gpu_model"]
RULE_RESOURCES = config["resources"]["rules"]
REG_PAIRS = config["training"]["reg_pairs"]


def resource_value(resources, name):
    """A resource's value from Snakemake's resources (None when unset)."""
    value = resources.get(name) if resources is not None else None
    value = getattr(value, "value", value)
    return int(value) if isinstance(value, (int, str)) and str(value).isdigit() else None


# GPUs (= processes) of a training job as Snakemake will give them: set-resources, capped by --resources gpu
TRAIN_GPUS = train_gpus(
    config,
    resource_value(workflow.global_resources, "gpu"),
    resource_value(workflow.resource_settings.overwrite_resources.get("train_run"), "gpu"),
)
BATCHES = plan_batches(config, RESULTS, TRAIN_GPUS)  # every run's global batch, refused here if it cannot be kept
WARMUPS = lora_warmups(config, RESULTS, GPUS_PER_TRAIN_JOB)  # warm-up key -> the runs that share it
RUN_WARMUP = {name: key for key, names in WARMUPS.items() for name in names}


wildcard_constraints:
    system="[A-Za-z0-9][A-Za-z0-9_.+-]*",
    shard=r"\d+",
    hubfolder="|".join(HUB_FOLDERS.values()),
    n=r"\d+",
    run="|".join(map(re.escape, RUNS)) or "no-runs",
    key="|".join(WARMUPS) or "no-warmups",
    merge="|".join(map(re.escape, MERGES)) or "no-merges",
    table="|".join(TABLES) or "no-tables",
    size=r"\d+",
    style="|".join(HPS_STYLES),


def retrain_hub():
    return WORLD == "toy" and config["toy"]["hub"] == "retrain"


def hub_env():
    """Shell prefix that points toy:NAME specs at the retrained hub when there is one."""
    return f"SB2BENCH_TOY_HUB={TOY_HUB} " if retrain_hub() else ""


def hub_inputs(*components):
    """The retrained hub folders a job needs (nothing when the shipped hub is used)."""
    if not retrain_hub():
        return []
    names = components or tuple(HUB_FOLDERS)
    return [f"{TOY_HUB}/{HUB_FOLDERS[c]}" for c in names]


def prompts_file():
    p = config["teacher_sampling"]["prompts"]
    return f"{RESULTS}/data/eval/prompts.jsonl" if p in ("toy_eval", "coco") else p


def subset_prompts_file(n):
    return f"{RESULTS}/data/eval/prompts-first{n}.jsonl"


def system_prompts(name):
    """The prompts a system is sampled on: the evaluation set, or its first n prompts for the systems outside
    evaluation.subset's whole-set ones (the toy set and its noise are prefix-stable)."""
    n = None if name == REFERENCE else sampled_prompts(config, name, FULL_SET)
    return prompts_file() if n is None else subset_prompts_file(n)


def system_n_prompts(name):
    return (None if name == REFERENCE else sampled_prompts(config, name, FULL_SET)) or n_prompts()


def wildcard_prompts(wildcards):
    return system_prompts(wildcards.system)


def scored_prompts_file(wildcards):
    """The prompts every system's standard metrics are scored on: the subset when there is one (whole-set
    systems are scored there too, so tables and claims compare like with like)."""
    n = subset_size(config)
    return prompts_file() if n is None else subset_prompts_file(n)


def whole_set_metrics(name):
    """A whole-set system's second metrics file, scored on every prompt of the set (evaluation.subset)."""
    return f"{RESULTS}/metrics/{name}/whole_set/metrics.json"


def evaluated():
    """Systems are scored when the prompts are the protocol's evaluation set (toy set or COCO)."""
    return config["teacher_sampling"]["prompts"] in ("toy_eval", "coco")


PROMPT_BUILDS = configured_builds(config)  # {out_dir}/<name>.jsonl -> its sources (training.prompt_sources)
PROMPT_BUILD_DIR = config["training"]["prompt_sources"]["out_dir"].rstrip("/")
PROMPT_BUILD_NAMES = sorted(Path(p).name.removesuffix(".jsonl") for p in PROMPT_BUILDS)


def _prompt_build_sources(name):
    return [replace(s, files=expand_files(s.files, s.name)) for s in PROMPT_BUILDS[f"{PROMPT_BUILD_DIR}/{name}.jsonl"]]


def prompt_build_inputs(name):
    return [f for s in _prompt_build_sources(name) for f in s.files]


def prompt_build_args(name):
    return shlex.join(cli_args(_prompt_build_sources(name)))


def coco_prompt_source():
    if COCO["dataset_json"]:
        return COCO["dataset_json"]
    if COCO["caption_list"]:
        return COCO["caption_list"]
    return f"{COCO_ROOT}/annotations/captions_val2014.json"


def coco_prompt_flag():
    if COCO["dataset_json"]:
        return "--dataset-json"
    return "--caption-list" if COCO["caption_list"] else "--captions"


def eval_images(wildcards):
    """The images a metric sees: protocol-resized copies in the real protocols, the samples in the toy one."""
    folder = f"{RESULTS}/samples/{wildcards.system}/images"
    return folder + str(PROTOCOL["resize"]["size"]) if PROTOCOL["resize"] else folder


def eval_attribute_outputs():
    """The evaluation job's attribute-accuracy record: toy world only (the real world has no classifier)."""
    return {"attributes": f"{RESULTS}/metrics/{{system}}/attributes.json"} if WORLD == "toy" else {}


def system_spec(name):
    """The sampling spec of a configured system (pipeline defaults to models.teacher)."""
    s = dict(SYSTEMS[name])
    s.setdefault("pipeline", config["models"]["teacher"])
    return s


def system_json(wildcards):
    return json.dumps(system_spec(wildcards.system))


def system_inputs(wildcards):
    """A trained student's folder, or the sweep folder holding a merged system's UNet (Snakemake cannot wait for
    a path inside another job's directory output; the spec still names the lambda-<λ> folder inside it);
    nothing for published models."""
    if wildcards.system in RUNS:
        return [student_dir(RESULTS, wildcards.system)]
    if wildcards.system in MERGE_SWEEPS:
        return [MERGE_SWEEPS[wildcards.system]]
    return []


def merge_inputs(wildcards):
    """The run students a merge reads (published inputs are read from their specs)."""
    m = MERGES[wildcards.merge]
    return [student_dir(RESULTS, m[s][4:]) for s in ("a", "b") if m[s].startswith("run:")] + hub_inputs()


def merge_specs(wildcards):
    m = MERGES[wildcards.merge]
    return {s: input_spec(config, m[s], RESULTS) for s in ("a", "b")}


def sweep_json(wildcards):
    m = MERGES[wildcards.merge]
    points = [{"lambda": lam, "metrics": metric_files(merge_system_name(m, lam))} for lam in m["lambdas"]]
    return json.dumps({"label": m.get("label") or m["name"], "points": points})


def sweep_inputs(wildcards):
    m = MERGES[wildcards.merge]
    return [f for lam in m["lambdas"] for f in metric_files(merge_system_name(m, lam))]


def run_json(wildcards, resources):
    """The run's config, with ``lora_warmup_from`` when it shares a warm-up and its job trains in one process
    (``resources.gpu``: a profile's set-resources may give the job more GPUs than the config says)."""
    cfg = resolve_run(config, RUNS[wildcards.run], RESULTS)
    if wildcards.run in RUN_WARMUP and resources.gpu <= 1:
        cfg["lora_warmup_from"] = warmup_dir(RESULTS, RUN_WARMUP[wildcards.run])
    return json.dumps(cfg)


def init_inputs(run):
    """The prompts, the parent run's student (run:NAME), and the retrained hub when there is one."""
    parent = [student_dir(RESULTS, run["init"][4:])] if run["init"].startswith("run:") else []
    prompts = resolve_run(config, run, RESULTS)["prompts"]  # a run may train on its own prompt file
    return [prompts] + parent + hub_inputs()


def run_inputs(wildcards):
    """What the run starts from (init_inputs), its regulariser pairs and its shared LoRA warm-up."""
    run = RUNS[wildcards.run]
    pairs = [reg_pairs_dir(RESULTS)] if uses_shared_reg_pairs(config, run) else []
    warm = [warmup_dir(RESULTS, RUN_WARMUP[run["name"]])] if run["name"] in RUN_WARMUP else []
    return init_inputs(run) + pairs + warm


def warmup_run(wildcards):
    """The first run of a warm-up key: its runs agree on everything the warm-up reads."""
    return RUNS[WARMUPS[wildcards.key][0]]


def warmup_json(wildcards):
    """The warm-up's config: the run config without the keys that cannot influence it (warmup.py): the same
    for every run of the key, so adding or editing a run's later keys never reruns the warm-up."""
    return json.dumps(warmup_job_config(resolve_run(config, warmup_run(wildcards), RESULTS)))


def warmup_inputs(wildcards):
    return init_inputs(warmup_run(wildcards))


def reg_pairs_prompts():
    return REG_PAIRS["prompts"] or train_prompts(config, RESULTS)


# What a heavy rule's jobs ask of a cluster (docs/slurm.md). A local run only counts `gpu`; the SLURM executor turns
# them into sbatch flags. Real world: SD 2.1-base at 512 px on COCO-30K shards, SBv2's training on A100s; the toy
# world asks for no more than the profile's default-resources. Config resources.rules.<rule> overrides key by key.
REAL_WORLD_RESOURCES = {
    "sample_shard": {"cpus_per_gpu": 4, "runtime": 360, "mem_mb": 32000},
    "hps_sample": {"cpus_per_gpu": 4, "runtime": 240, "mem_mb": 32000},
    "train_run": {"cpus_per_gpu": 8, "runtime": 2880, "mem_mb": 64000},  # 48 h; a rerun resumes from a checkpoint
    "lora_warmup": {"cpus_per_gpu": 8, "runtime": 240, "mem_mb": 64000},
    "reg_pairs": {"cpus_per_gpu": 8, "runtime": 720, "mem_mb": 32000},  # SBv2: 200K prompts x 25 steps
    "evaluate_system": {"cpus_per_gpu": 8, "runtime": 240, "mem_mb": 64000},
    "evaluate_whole_set": {"cpus_per_gpu": 8, "runtime": 240, "mem_mb": 64000},
    "hps_score": {"cpus_per_gpu": 4, "runtime": 120, "mem_mb": 32000},
    "merge_students": {"cpus_per_gpu": 4, "runtime": 60, "mem_mb": 32000},
    "timing_system": {"cpus_per_gpu": 4, "runtime": 120, "mem_mb": 32000},
    "coco_reference": {"runtime": 240, "mem_mb": 16000},  # CPUs: its threads (evaluation.coco.resize_threads)
}
RESOURCE_RULES = set()  # rules whose resources job_resources() makes (check_rule_resources)


def job_resources(rule, gpus=0):
    """A rule's `resources:`: `gpu` (the config's count), and for GPU jobs the GRES type (resources.gpu_model);
    in the real world the table above; resources.rules.<rule> last. A job without a GPU keeps neither the GRES
    type nor `cpus_per_gpu`, so what it asks for reads true: its threads become --cpus-per-task."""
    RESOURCE_RULES.add(rule)
    res = {"gpu": gpus}
    if gpus and GPU_MODEL:
        res["gpu_model"] = GPU_MODEL
    res.update(REAL_WORLD_RESOURCES.get(rule, {}) if WORLD == "real" else {})
    res.update(RULE_RESOURCES.get(rule, {}))
    if not res["gpu"]:
        res.pop("cpus_per_gpu", None)
        res.pop("gpu_model", None)
    return res


def check_rule_resources():
    """Called at the end of the Snakefile: a resources.rules entry must name a rule that reads it."""
    unknown = sorted(set(RULE_RESOURCES) - RESOURCE_RULES)
    if unknown:
        raise ConfigError(f"config resources.rules: {', '.join(unknown)} is not a rule that takes its resources from "
                          f"the config (those are {', '.join(sorted(RESOURCE_RULES))}); for another rule use "
                          f"--set-resources RULE:KEY=VALUE on the command line")


def run_threads(wildcards):
    return resolve_run(config, RUNS[wildcards.run], RESULTS).get("threads") or 1


def warmup_threads(wildcards):
    return json.loads(warmup_json(wildcards)).get("threads") or 1


def shard_dirs(wildcards):
    ts = config["teacher_sampling"]
    one_step = SYSTEMS[wildcards.system].get("kind") == "onestep"
    n = ts["onestep_shards"] if one_step and ts["onestep_shards"] else ts["shards"]
    return [f"{RESULTS}/samples/{wildcards.system}/shards/{k}-of-{n}" for k in range(n)]


def n_prompts():
    if config["teacher_sampling"]["prompts"] == "toy_eval":
        return config["toy"]["eval_set"]["n_prompts"]
    if config["teacher_sampling"]["prompts"] == "coco":
        return COCO["n_prompts"]
    with open(config["teacher_sampling"]["prompts"]) as f:
        return sum(1 for line in f if line.strip())


def reference_scored():
    """The reference renders' attribute accuracy is a row of the toy teacher report (rule reference_attributes)."""
    return WORLD == "toy" and config["teacher_sampling"]["prompts"] == "toy_eval"


def reference_accuracy_inputs():
    return [f"{RESULTS}/metrics/{REFERENCE}/attributes.json"] if reference_scored() else []


def report_systems_json():
    rows = []
    for name in SYSTEMS:
        rows.append({"name": name, "label": SYSTEMS[name].get("label", name),
                     "images": f"{RESULTS}/samples/{name}/images",
                     "accuracy": f"{RESULTS}/metrics/{name}/attributes.json",
                     "spec": system_spec(name)})
    if reference_scored():
        rows.append({"name": "reference", "label": "reference renders (ceiling)",
                     "images": f"{RESULTS}/data/eval/reference",
                     "accuracy": f"{RESULTS}/metrics/{REFERENCE}/attributes.json", "spec": {"kind": "reference"}})
    return json.dumps({"systems": rows})


def report_accuracy_inputs():
    """Each system's attributes.json (written by its evaluation job) and the reference renders' one."""
    return [f"{RESULTS}/metrics/{name}/attributes.json" for name in SYSTEMS] + reference_accuracy_inputs()


def eval_models_json():
    """Model specs of the protocol's feature and CLIP metrics."""
    return json.dumps({k: config["models"][k] for k in ("feature_net", "clip")})


def claim_systems(metrics=None):
    """The systems the claims compare (only the claims on ``metrics`` when given), merge points included."""
    claims = [c for c in CLAIMS if metrics is None or c["metric"] in metrics]
    names = {c[k] for c in claims for k in ("system", "than") if c.get(k)}
    names |= {merge_system_name(MERGES[c["merge"]], lam) for c in claims if c.get("merge")
              for lam in MERGES[c["merge"]]["lambdas"]}
    return sorted(names)


def hps_systems():
    """HPS renders four prompt sets per system, so only the systems a report shows it for are scored: those
    of tables with an HPS column and of evaluation.hps.systems (every system when there are none)."""
    if not HPS["enabled"]:
        return set()
    chosen = set(HPS["systems"]) | {r["system"] for t in TABLES.values() if HPS_METRICS & set(t["metrics"])
                                    for r in t["rows"] if r.get("system")}
    chosen |= set(claim_systems(HPS_METRICS))
    chosen |= {g for name in chosen for g in SEED_GROUPS.get(name, [])}
    return chosen or set(SYSTEMS)


def metric_files(name):
    """Every metric JSON of one system: the protocol's metrics, plus HPS for the systems scored with it."""
    files = [f"{RESULTS}/metrics/{name}/metrics.json"]
    return files + ([f"{RESULTS}/metrics/{name}/hps.json"] if name in HPS_SYSTEMS else [])


HPS_SYSTEMS = hps_systems()
FULL_SET = full_set_systems(config, {m: [merge_system_name(MERGES[m], lam) for lam in MERGES[m]["lambdas"]]
                                     for m in MERGES}, SEED_GROUPS)


def metric_source(name):
    """What a report reads for one system: its metric files, or those of every seed of a repeated run."""
    if name in SEED_GROUPS:
        return {"seeds": [metric_files(n) for n in SEED_GROUPS[name]]}
    return metric_files(name)


def whole_set_metric_files():
    """The whole-set scores of evaluation.subset's systems (none without a subset)."""
    return [whole_set_metrics(name) for name in SYSTEMS if name in FULL_SET]


def eval_systems_json():
    """Every system's row on the scored prompts, then the whole-set rows of evaluation.subset's systems."""
    rows = [{"label": SYSTEMS[name].get("label", name), "metrics": metric_files(name)} for name in SYSTEMS]
    rows += [{"label": f"{SYSTEMS[name].get('label', name)}, whole set", "metrics": [whole_set_metrics(name)]}
             for name in SYSTEMS if name in FULL_SET]
    return json.dumps({"systems": rows})


def table_systems(wildcards):
    return [r["system"] for r in TABLES[wildcards.table]["rows"] if r.get("system")]


def table_metric_files(wildcards):
    names = [n for name in dict.fromkeys(table_systems(wildcards)) for n in SEED_GROUPS.get(name, [name])]
    return [f for name in names for f in metric_files(name)]


def table_json(wildcards):
    """The table entry with each system row labelled as its system is (unless the row names a label)."""
    table = json.loads(json.dumps(TABLES[wildcards.table]))
    for r in table["rows"]:
        if r.get("system") and not r.get("label"):
            r["label"] = SYSTEMS[r["system"]].get("label", r["system"])
    return json.dumps(table)


def table_metrics_json(wildcards):
    return json.dumps({name: metric_source(name) for name in table_systems(wildcards)})


def table_outputs():
    if not evaluated():
        return []
    reports = [f"{REPORTS}/{t}.md" for t in TABLES] + [f"{REPORTS}/sweep_{m}.md" for m in MERGES]
    return reports + [f"{REPORTS}/index.md", "reports/index.md"]


def index_entries():
    """Every report of this world, by section, in reading order (paths relative to the index)."""
    out = [{"path": f"{t}.md", "title": TABLES[t].get("title") or t, "section": "Tables"} for t in TABLES]
    out += [{"path": f"sweep_{m}.md", "title": MERGES[m].get("label") or m, "section": "Merge sweeps"} for m in MERGES]
    out += [{"path": os.path.basename(f), "title": title, "section": "Figures"} for f, title in figure_entries()]
    out.append({"path": "eval.md", "title": "Every system under the evaluation protocol", "section": "Evaluation"})
    if WORLD == "toy" and config["teacher_sampling"]["prompts"] == "toy_eval":
        out.append({"path": "teacher.md", "title": "Toy teacher: samples and attribute accuracy", "section": "Evaluation"})
    if timing_outputs():
        out.append({"path": "timing.md", "title": "Inference time (SBv2 Table 8 protocol)", "section": "Timing"})
    out.append({"path": "benchmarks.md", "title": "Where the time goes: per-job benchmarks", "section": "Timing"})
    return out


def claim_compared(claim):
    """The systems one claim compares (a merge claim: every λ of its sweep), seed replicas included."""
    names = [claim["system"], claim["than"]] if claim.get("than") else \
        [merge_system_name(MERGES[claim["merge"]], lam) for lam in MERGES[claim["merge"]]["lambdas"]]
    return [n for name in names for n in SEED_GROUPS.get(name, [name])]


def claim_scored_on_whole_set(claim):
    """Every system the claim compares was scored on the whole set too (evaluation.subset)."""
    return whole_set_claim(claim_compared(claim), FULL_SET)


def whole_set_source(name):
    """A system's whole-set metric source (the protocol's metrics; HPS is scored on its own prompt sets)."""
    if name in SEED_GROUPS:
        return {"seeds": [[whole_set_metrics(n)] for n in SEED_GROUPS[name]]}
    return [whole_set_metrics(name)]


def index_claims():
    """The claims; one whose systems were all scored on the whole set carries those scores as its sources."""
    out = []
    for c in CLAIMS:
        if not claim_scored_on_whole_set(c):
            out.append(c)
        elif c.get("merge"):
            lams = MERGES[c["merge"]]["lambdas"]
            out.append({**c, "sweep": [{"lambda": lam, "source": whole_set_source(merge_system_name(MERGES[c["merge"]], lam))}
                                       for lam in lams]})
        else:
            out.append({**c, "sources": {n: whole_set_source(n) for n in (c["system"], c["than"])}})
    return out


def index_inputs():
    """The reports it links, and the metric files and per-image arrays the claims resample."""
    files = [f"{REPORTS}/{e['path']}" for e in index_entries()]
    names = [n for name in claim_systems() for n in SEED_GROUPS.get(name, [name])]
    files += [f for n in names for f in metric_files(n)] + [f"{RESULTS}/metrics/{n}/per_image.npz" for n in names]
    whole = dict.fromkeys(n for c in CLAIMS if claim_scored_on_whole_set(c) for n in claim_compared(c))
    return files + [f for n in whole for f in (whole_set_metrics(n), whole_set_metrics(n).replace("metrics.json", "per_image.npz"))]


def index_spec():
    sweeps = {c["merge"]: [{"lambda": lam, "source": metric_files(merge_system_name(MERGES[c["merge"]], lam))}
                           for lam in MERGES[c["merge"]]["lambdas"]] for c in CLAIMS if c.get("merge")}
    sources = {name: metric_source(name) for name in claim_systems()}
    return json.dumps({"world": WORLD, "tier": config["report"]["tier"], "note": config["report"]["note"],
                       "claims": index_claims(), "sources": sources, "sweeps": sweeps,
                       "bootstrap": config["evaluation"]["bootstrap"], "outputs": index_entries()})


def benchmark_files():
    """The benchmark TSVs of this config's jobs (the folder may also hold those of jobs since removed)."""
    files = [f"{BENCH}/train/{run}.tsv" for run in RUNS]
    files += [f"{BENCH}/train/warmups/{key}.tsv" for key in WARMUPS]
    files += [f"{BENCH}/train/reg_pairs.tsv"] if any(uses_shared_reg_pairs(config, r) for r in RUNS.values()) else []
    files += [f"{BENCH}/merge/{m}.tsv" for m in MERGES]
    for name in SYSTEMS:
        files += [f"{BENCH}/sample/{name}/{os.path.basename(d)}.tsv" for d in shard_dirs(SimpleNamespace(system=name))]
        files.append(f"{BENCH}/metrics/{name}/evaluate.tsv")
        files += [f"{BENCH}/metrics/{name}/evaluate_whole_set.tsv"] if name in FULL_SET else []
        files += [f"{BENCH}/hps/{name}.tsv", f"{BENCH}/metrics/{name}/hps.tsv"] if name in HPS_SYSTEMS else []
    files += [f"{BENCH}/hub/{folder}.tsv" for folder in HUB_FOLDERS.values()] if retrain_hub() else []
    files += [f"{BENCH}/data/coco_reference.tsv"] if config["teacher_sampling"]["prompts"] == "coco" else []
    files += [f"{BENCH}/metrics/{REFERENCE}/attributes.tsv"] if reference_scored() else []
    return files


FIGURE_TITLES = {"trade_off": ("fig_fid_clip.png", "FID against CLIP score: the teacher's cfg sweep and the students"),
                 "loss_curves": ("fig_loss_curves.png", "Training losses of every run"),
                 "qualitative": ("fig_qualitative.png", "The same prompts and seeds across systems")}


def figure_entries():
    """(report file, title) of the figures this world draws (FIGURE_JOBS: rules/figures.smk)."""
    return [FIGURE_TITLES[job] for job in FIGURE_JOBS] if evaluated() else []


def timing_outputs():
    """The timing table and its per-system results: the results are listed as targets too, so a clone, which
    holds the committed table but no results, times this machine instead of keeping the committed table."""
    if not (TIMING["enabled"] and TIMING["systems"]):
        return []
    return [f"{REPORTS}/timing.md"] + [f"{RESULTS}/timing/{s['system']}.json" for s in TIMING["systems"]]


def timing_systems_json():
    rows = [{"label": SYSTEMS[s["system"]].get("label", s["system"]), "paper_row": s.get("paper_row"),
             "file": f"{RESULTS}/timing/{s['system']}.json"} for s in TIMING["systems"]]
    return json.dumps({"systems": rows, "paper_table": "sbv2_t8"})


def timing_threads():
    """Cores a timing job reserves: timing.job_threads, else in the toy world (a CPU clock) every core of this
    machine, which a local run caps at --cores, so nothing runs beside it; else timing.threads. Never
    workflow.cores: a cluster executor leaves it unset and Snakemake then refuses to parse the workflow."""
    if TIMING["job_threads"]:
        return TIMING["job_threads"]
    if WORLD != "toy":
        return TIMING["threads"]
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def final_outputs():
    """Reports need the toy evaluation set (attributes, reference renders); other prompt sets get images."""
    hub = [f"{TOY_HUB}/PROVENANCE.md"] + timing_outputs() if retrain_hub() else timing_outputs()
    # the result files are listed too: reports are committed, results are not, so a fresh clone
    # regenerates everything instead of trusting the committed reports
    metrics = [f for name in SYSTEMS for f in metric_files(name)] + whole_set_metric_files()
    if WORLD == "toy" and config["teacher_sampling"]["prompts"] == "toy_eval":
        reports = [f"{REPORTS}/teacher.md", f"{REPORTS}/teacher_grid.png", f"{REPORTS}/eval.md"]
        return hub + metrics + reports + table_outputs()
    if config["teacher_sampling"]["prompts"] == "coco":
        return metrics + [f"{REPORTS}/eval.md"] + table_outputs()
    return hub + [f"{RESULTS}/samples/{name}/images" for name in SYSTEMS]


COMPONENT_OF = {folder: name for name, folder in HUB_FOLDERS.items()}


def hub_component(wildcards):
    return COMPONENT_OF[wildcards.hubfolder]


def hub_component_params(wildcards):
    return json.dumps(config["toy"]["training"][hub_component(wildcards)])


def hub_component_threads(wildcards):
    """Cores a hub job reserves: the torch threads its training uses (toy.training.<component>.threads; 1 for
    the tokenizer, which trains nothing), so 1-thread components (the smoke config) run two at a time."""
    return config["toy"]["training"][hub_component(wildcards)].get("threads", 1)


def hub_component_dependencies(wildcards):
    name = hub_component(wildcards)
    return [f"{TOY_HUB}/{HUB_FOLDERS[d]}" for d in HUB_DEPENDS.get(name, [])]


def classifier_spec():
    return config["models"]["classifier"]


def output_parent(wildcards, output):
    """Folder that holds the rule's first output (the hub folder for hub rules)."""
    return os.path.dirname(output[0])


def input_parent(wildcards, input):
    return os.path.dirname(input[0])
