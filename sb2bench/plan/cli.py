"""``sb2bench plan`` and ``sb2bench check-weights``: look before launching (cost.py, batch.py, weights.py);
``config-doc`` and ``validate-config``: the config's key table and a config checked with defaults filled (config.py)."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_PROFILE = Path(__file__).resolve().parents[2] / "profiles" / "default"


def profile_gpus(profile: str | Path | None) -> tuple[int | None, int | None]:
    """(global ``gpu`` resource, ``set-resources`` gpu of train_run) of a Snakemake profile folder: what caps and
    what sets the GPUs of a training job, as Snakemake will apply them."""
    import yaml

    if not profile or (Path(profile) == DEFAULT_PROFILE and not DEFAULT_PROFILE.is_dir()):
        return None, None  # no profile (an installed package has no profiles/ beside it)
    path = Path(profile) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"--profile {profile}: no {path}")
    data = yaml.safe_load(path.read_text()) or {}
    limit = None
    for item in data.get("resources") or []:
        name, _, value = str(item).partition("=")
        if name.strip() == "gpu" and value.strip().isdigit():
            limit = int(value)
    overwrite = ((data.get("set-resources") or {}).get("train_run") or {}).get("gpu")
    return limit, (int(overwrite) if overwrite is not None else None)


def _train_gpus(a: argparse.Namespace, config: dict) -> int:
    from sb2bench.plan.batch import train_gpus

    limit, overwrite = profile_gpus(a.profile)
    if a.gpus is not None:
        limit = a.gpus  # as --resources gpu=N on the snakemake command line
    return train_gpus(config, limit, overwrite)


def cmd_plan(a: argparse.Namespace) -> None:
    from sb2bench._infra.atomic import atomic_file
    from sb2bench.plan.batch import planning_config
    from sb2bench.plan.cost import make_plan, to_markdown

    config = planning_config(*a.configfile)
    text = to_markdown(make_plan(config, _train_gpus(a, config), a.gpu, a.mfu), list(a.configfile))
    print(text, end="")
    if a.out:
        with atomic_file(a.out) as f:
            f.write(text)
    if a.check_weights:
        cmd_check_weights(a, config)


def cmd_check_weights(a: argparse.Namespace, config: dict | None = None) -> None:
    from sb2bench.plan.batch import planning_config
    from sb2bench.plan.paths import config_results
    from sb2bench.plan.weights import check_weights, needs

    config = config or planning_config(*a.configfile)
    results = config_results(config)
    check_weights(config, results)
    print(f"all {len(needs(config, results))} models of the config are here (checked offline)")


def cmd_config_doc(a: argparse.Namespace) -> None:
    from sb2bench.plan.config import schema_table

    print(schema_table())


def cmd_validate_config(a: argparse.Namespace) -> None:
    import yaml

    from sb2bench.plan.config import load_config

    print(yaml.safe_dump(load_config(*a.configs), sort_keys=False))


def add_cli(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("config-doc", help="print the table of every config key (from the schema)")
    s.set_defaults(func=cmd_config_doc)

    s = sub.add_parser("validate-config", help="validate config files and print them with defaults filled")
    s.add_argument("configs", nargs="+")
    s.set_defaults(func=cmd_validate_config)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--configfile", nargs="+", default=[], help="config files, merged over config/default.yaml "
                        "as snakemake --configfile merges them")
    s = sub.add_parser("plan", parents=[common], help="every training, sampling and scoring job with its GPU-hours, "
                       "disk and global batch, before launch")
    s.add_argument("--profile", default=str(DEFAULT_PROFILE),
                   help="Snakemake profile whose gpu resource caps (and set-resources sets) a training job's GPUs; "
                        "'' for none")
    s.add_argument("--gpus", type=int, default=None, help="GPUs of the machine, as snakemake --resources gpu=N")
    s.add_argument("--gpu", choices=["a100", "h200"], default="a100", help="GPU model of the estimate (peak rate)")
    s.add_argument("--mfu", type=float, default=None, help="utilisation (0-1) instead of the measured or assumed one")
    s.add_argument("--out", default=None, help="also write the plan as markdown here")
    s.add_argument("--check-weights", action="store_true", help="then check every model offline (check-weights)")
    s.set_defaults(func=cmd_plan)
    s = sub.add_parser("check-weights", parents=[common], help="resolve every model of a config offline; list all "
                       "missing pieces with the command that fetches each")
    s.set_defaults(func=cmd_check_weights)
