"""The global batch of every training run, fixed before any job starts.

A run's ``global_batch_size`` (SBv2: 64) is a fact of its config; the processes of its job follow the GPUs the
job gets, and the gradient-accumulation steps make up the rest (TrainConfig.accumulation). Snakemake caps a
job's ``gpu`` resource at the global limit (profiles/default: ``gpu=1``), and ``--set-resources`` may raise a
rule's, so the processes of a training job are derived here as the train rule will see them; the Snakefile
calls :func:`plan_batches` at parse time, so a global batch that the count cannot divide stops the workflow
before any job, naming the run, the numbers and the fix. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass

from sb2bench.plan.errors import ConfigError
from sb2bench.plan.runs import resolve_run
from sb2bench.train.config import TrainConfig


@dataclass(frozen=True)
class BatchPlan:
    run: str
    processes: int
    batch_size: int
    accumulation: int
    global_batch_size: int
    global_batch_key: int  # the run config's global_batch_size (0: processes x batch_size)


def train_gpus(config: dict, gpu_limit: int | None = None, overwrite: int | None = None) -> int:
    """GPUs of a training job: resources.gpus_per_train_job (null: gpus_per_job), or a profile's
    ``set-resources`` value for train_run (``overwrite``), capped by the global ``gpu`` resource (``gpu_limit``)
    as Snakemake caps it."""
    res = config["resources"]
    gpus = res.get("gpus_per_train_job")
    gpus = res.get("gpus_per_job", 0) if gpus is None else gpus
    if overwrite is not None:
        gpus = overwrite
    if gpu_limit is not None:
        gpus = min(gpus, gpu_limit)
    return gpus


def processes_of(gpus: int) -> int:
    """A job of N GPUs trains in N processes; 0 GPUs (CPU, the toy world) in one (train/launch.py)."""
    return max(1, gpus)


def plan_batches(config: dict, results: str, gpus: int) -> dict[str, BatchPlan]:
    """Run name -> its batch plan on ``gpus`` GPUs per training job; every run that cannot be planned is
    listed in one ConfigError."""
    processes, plans, errors = processes_of(gpus), {}, []
    for run in config["training"]["runs"]:
        cfg = TrainConfig.from_dict(resolve_run(config, run, results))
        try:
            accumulation = cfg.accumulation(processes)
        except ValueError as exc:
            errors.append(f"training run {run['name']!r}: {exc}")
            continue
        plans[run["name"]] = BatchPlan(run["name"], processes, cfg.batch_size, accumulation,
                                       processes * cfg.batch_size * accumulation, cfg.global_batch_size)
    if errors:
        raise ConfigError(f"{len(errors)} training run(s) cannot keep their global batch on {processes} process(es) "
                          f"per training job ({gpus} GPU(s)):\n  " + "\n  ".join(errors))
    return plans


def planning_config(*paths: str) -> dict:
    """The config of ``--configfile`` files as the workflow merges them (over config/default.yaml), schema-checked
    with defaults filled and seed replicas expanded, but without the data checks of the workflow's parse: a plan
    or a weights check is for before the data is in place."""
    import yaml

    from sb2bench.plan.config import SCHEMA, _key, _validator, merged_yaml
    from sb2bench.plan.runs import expand_seed_replicas

    config = merged_yaml(*paths)
    errors = sorted(_validator(yaml.safe_load(SCHEMA.read_text())).iter_errors(config),
                    key=lambda e: list(e.absolute_path))
    if errors:
        raise ConfigError(f"config key {_key(errors[0].absolute_path)}: {errors[0].message}. "
                          f"See schemas/config.schema.yaml for allowed values.")
    config["training"]["runs"] = expand_seed_replicas(config)
    return config
