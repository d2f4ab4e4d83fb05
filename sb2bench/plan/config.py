"""Configuration: JSON-Schema validation with defaults, plus the checks a schema cannot express.

Snakemake validates ``config`` against ``schemas/config.schema.yaml`` before any job runs
(``rules/common.smk``); this module does the same outside Snakemake (tests, the CLI) and
adds semantic checks. Errors name the offending key and say how to fix it.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from sb2bench.plan.errors import ConfigError

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _validator(schema: dict):
    from jsonschema import Draft202012Validator, validators

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = yaml.safe_load(yaml.safe_dump(sub["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, schema)

    cls = validators.extend(Draft202012Validator, {"properties": set_defaults})
    return cls(schema)


def validate_config(config: dict, schema_path: Path = SCHEMA) -> dict:
    """Fill defaults in place and validate; raise ConfigError naming the first bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(_validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        raise ConfigError(f"config key {_key(e.absolute_path)}: {e.message}. "
                          f"See schemas/config.schema.yaml for allowed values.")
    from sb2bench.plan.runs import expand_seed_replicas

    config["training"]["runs"] = expand_seed_replicas(config)  # as the workflow does (rules/common.smk)
    check_config(config)
    check_models(config)
    return config


def check_config(config: dict) -> None:
    """Rules the schema cannot state: unique system names, toy-only models in the toy world."""
    systems = config["teacher_sampling"]["systems"]
    names = [s["name"] for s in systems]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"config key teacher_sampling.systems: duplicate system names {dupes}; names must be unique")
    if "reference" in names:
        raise ConfigError("config key teacher_sampling.systems: the name 'reference' is reserved for the "
                          "evaluation set's reference renders; rename that system")
    if config["world"] == "real":
        toy = {k: v for k, v in config["models"].items() if isinstance(v, str) and v.startswith("toy:")}
        if toy:
            raise ConfigError(f"config key models: {sorted(toy)} still point at toy models while world is 'real'; "
                              f"set them to hub ids or local folders")
        if config["teacher_sampling"]["prompts"] == "toy_eval":
            raise ConfigError("config key teacher_sampling.prompts: 'toy_eval' exists only in the toy world; "
                              "give 'coco' or a JSON Lines prompt file")
    ts = config["teacher_sampling"]
    if ts["device"] == "cpu" and ts["dtype"] != "float32":
        raise ConfigError(f"config key teacher_sampling.dtype: {ts['dtype']} needs a GPU; use float32 with device cpu")
    check_evaluation(config)
    from sb2bench.plan.merges import check_merges, merge_systems
    from sb2bench.plan.runs import check_runs

    results = f"results/{config['world']}"  # the workflow's RESULTS
    check_runs(config, results)
    check_merges(config)
    merged = set(merge_systems(config, results))
    check_tables(config, merged)
    check_claims_config(config, merged)
    check_timing(config, merged)
    from sb2bench.plan.figures import check_figures

    check_figures(config)
    prompts = config["teacher_sampling"]["prompts"]
    if prompts not in ("toy_eval", "coco"):
        from sb2bench.data.prompts import PromptFileError, read_prompts

        try:
            read_prompts(prompts)
        except PromptFileError as exc:
            raise ConfigError(f"config key teacher_sampling.prompts: {exc}; give a JSON Lines file of "
                              f"{{\"index\": i, \"caption\": ...}} rows or 'toy_eval'") from exc


def _need_path(key: str, value, what: str) -> Path:
    if not value:
        raise ConfigError(f"config key {key}: not set; give {what}")
    path = Path(value).expanduser()
    if not path.exists():
        raise ConfigError(f"config key {key}: {value} does not exist; give {what}")
    return path


def check_evaluation(config: dict) -> None:
    """Protocol and world agree, and the protocol's data and checkpoints exist before any job starts."""
    from sb2bench.evaluate.metrics.hps import HPS_VERSIONS
    from sb2bench.evaluate.protocol import REAL_PROTOCOLS

    ev, world = config["evaluation"], config["world"]
    if (world == "toy") != (ev["protocol"] == "toy"):
        raise ConfigError(f"config key evaluation.protocol: {ev['protocol']!r} does not belong to the {world} world; "
                          f"use 'toy' in the toy world and one of {list(REAL_PROTOCOLS)} in the real world")
    if config["teacher_sampling"]["prompts"] != "coco":
        return
    if world != "real":
        raise ConfigError("config key teacher_sampling.prompts: 'coco' needs world: real")
    coco = ev["coco"]
    fetch = coco["download"]["enabled"]
    if fetch and not coco["download"]["files"]:
        raise ConfigError("config key evaluation.coco.download.files: download is enabled but no archives are "
                          "listed; give [{url, sha256}, ...] or set enabled: false")
    root = coco["root"] if fetch else _need_path("evaluation.coco.root", coco["root"],
                                                  "the folder that holds val2014/ and annotations/")
    if fetch and not root:
        raise ConfigError("config key evaluation.coco.root: set the folder the archives unpack into")
    if not fetch and not (Path(root).expanduser() / "val2014").is_dir():
        raise ConfigError(f"config key evaluation.coco.root: {root} has no val2014/ folder; unpack COCO's "
                          f"val2014.zip there or enable evaluation.coco.download")
    if ev["protocol"] == "dmd2":
        _need_path("evaluation.coco.caption_list", coco["caption_list"], "DMD2's 30K caption list")
    elif coco["dataset_json"]:
        _need_path("evaluation.coco.dataset_json", coco["dataset_json"], "SBv2's dataset.json")
    elif not fetch:
        _need_path("evaluation.coco.root", Path(root).expanduser() / "annotations" / "captions_val2014.json",
                   "a root whose annotations/ holds captions_val2014.json, or evaluation.coco.dataset_json")
    hps = ev["hps"]
    if hps["enabled"]:
        ckpt = _need_path("evaluation.hps.checkpoint", hps["checkpoint"],
                          f"the folder holding {HPS_VERSIONS[hps['version']]}")
        _need_path("evaluation.hps.checkpoint", ckpt / HPS_VERSIONS[hps["version"]],
                   f"the folder holding {HPS_VERSIONS[hps['version']]} (download it from xswu/HPSv2)")
        _need_path("evaluation.hps.benchmark", hps["benchmark"], "hpsv2's benchmark prompt folder")


def check_timing(config: dict, extra_systems: set[str] = frozenset()) -> None:
    """Timed systems are configured systems, once each; paper rows are rows of SBv2 Table 8."""
    from sb2bench.paper.numbers import paper_table

    timing = config["timing"]
    if not timing["enabled"]:
        return
    systems = {s["name"] for s in config["teacher_sampling"]["systems"]}
    systems |= {r["name"] for r in config["training"]["runs"] if r["evaluate"]} | set(extra_systems)
    rows = paper_table("sbv2_t8").row_keys
    seen = set()
    for i, s in enumerate(timing["systems"]):
        if s["system"] not in systems:
            raise ConfigError(f"config key timing.systems[{i}].system: {s['system']!r} is not a configured system "
                              f"or evaluated run ({sorted(systems)})")
        if s["system"] in seen:
            raise ConfigError(f"config key timing.systems[{i}].system: {s['system']!r} is listed twice")
        seen.add(s["system"])
        if s.get("paper_row") and s["paper_row"] not in rows:
            raise ConfigError(f"config key timing.systems[{i}].paper_row: {s['paper_row']!r} is not a row of "
                              f"SBv2 Table 8 (rows: {list(rows)})")


def check_tables(config: dict, extra_systems: set[str] = frozenset()) -> None:
    """Every table row names a configured system or a paper row that exists; HPS columns need HPS."""
    from sb2bench.paper.numbers import PaperTableError, paper_table

    systems = {s["name"] for s in config["teacher_sampling"]["systems"]}
    systems |= {r["name"] for r in config["training"]["runs"] if r["evaluate"]} | set(extra_systems)
    ids = [t["id"] for t in config["tables"]]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"config key tables: duplicate table ids {sorted({i for i in ids if ids.count(i) > 1})}")
    for t in config["tables"]:
        key = f"tables[{t['id']}]"
        try:
            paper = paper_table(t["paper_table"]) if t.get("paper_table") else None
        except (PaperTableError, KeyError) as exc:
            raise ConfigError(f"config key {key}.paper_table: {exc}") from exc
        if any(m.startswith("hps_") for m in t["metrics"]) and not config["evaluation"]["hps"]["enabled"]:
            raise ConfigError(f"config key {key}.metrics: HPS columns need evaluation.hps.enabled: true")
        for i, r in enumerate(t["rows"]):
            if not r.get("system") and not r.get("paper_row"):
                raise ConfigError(f"config key {key}.rows[{i}]: give a system, a paper_row, or both")
            if r.get("system") and r["system"] not in systems:
                raise ConfigError(f"config key {key}.rows[{i}].system: {r['system']!r} is not a configured system "
                                  f"or evaluated run ({sorted(systems)})")
            if r.get("paper_row") and (paper is None or r["paper_row"] not in paper.row_keys):
                raise ConfigError(f"config key {key}.rows[{i}].paper_row: {r['paper_row']!r} is not a row of "
                                  f"{t.get('paper_table')!r}" + (f" (rows: {list(paper.row_keys)})" if paper else ""))
    unknown = sorted(set(config["evaluation"]["hps"].get("systems") or []) - systems)
    if unknown:
        raise ConfigError(f"config key evaluation.hps.systems: {unknown} are not configured systems or evaluated "
                          f"runs ({sorted(systems)})")


def check_models(config: dict) -> None:
    """Every local model this DAG loads (and every toy:NAME of the shipped hub) must exist before any
    job starts; hub ids are checked when loaded (they may sit in the Hugging Face cache)."""
    from sb2bench.models import zoo

    retrained = config["world"] == "toy" and config["toy"]["hub"] == "retrain"
    specs = {"models.teacher": config["models"]["teacher"]}  # the models this DAG loads
    if config["world"] == "toy" and config["models"]["classifier"]:
        specs["models.classifier"] = config["models"]["classifier"]
    for s in config["teacher_sampling"]["systems"]:
        for field in ("pipeline", "unet"):
            if isinstance(s.get(field), str) and s[field] != "random":
                specs[f"teacher_sampling.systems[{s['name']}].{field}"] = s[field]
    evaluated = config["teacher_sampling"]["prompts"] in ("toy_eval", "coco")
    for name in ("feature_net", "clip", "hps") if evaluated else ():
        spec = config["models"][name]
        if name == "hps" and not config["evaluation"]["hps"]["enabled"]:
            continue
        arch, sep, rest = spec.partition(":")
        if sep and arch != "toy":  # open_clip ARCH:TAG (a hub tag) or ARCH:/local/file
            if rest.startswith(("/", ".", "~")):
                specs[f"models.{name}"] = rest
            continue
        if name == "hps" and ":" not in spec and "/" not in spec:
            continue  # a bare open_clip architecture; its checkpoint is evaluation.hps.checkpoint
        specs[f"models.{name}"] = spec
    for key, spec in specs.items():
        if (spec.startswith("toy:") and retrained) or zoo.HUB_ID.match(spec):
            continue
        try:
            zoo.resolve(spec)
        except zoo.ModelNotFoundError as exc:
            raise ConfigError(f"config key {key}: {exc}") from exc


DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "default.yaml"


def merged_yaml(*paths: str | Path, base: bool = True) -> dict:
    """YAML files merged left to right over config/default.yaml, as the workflow merges them (its
    ``configfile:`` is the default and every ``--configfile`` goes over it: lists replace, mappings merge)."""
    merged: dict = {}
    if base and DEFAULT_CONFIG.exists() and DEFAULT_CONFIG.resolve() not in {Path(p).resolve() for p in paths}:
        paths = (DEFAULT_CONFIG, *paths)
    for p in paths:
        _deep_update(merged, yaml.safe_load(Path(p).read_text()) or {})
    return merged


def load_config(*paths: str | Path, base: bool = True) -> dict:
    """``merged_yaml`` of the files, validated with defaults filled."""
    return validate_config(merged_yaml(*paths, base=base))


def _deep_update(base: dict, new: dict) -> dict:
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v
    return base


def _leaves(schema: dict, defs: dict, prefix: str = ""):
    """(key path, subschema) for every documented key, array items shown as ``[]``."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    if schema.get("type") == "object" and "properties" in schema:
        for name, sub in schema["properties"].items():
            yield from _leaves(sub, defs, f"{prefix}.{name}" if prefix else name)
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict) and "properties" in schema["items"]:
        yield prefix, schema
        yield from _leaves(schema["items"], defs, f"{prefix}[]")
    else:
        yield prefix, schema


def schema_table(schema_path: Path = SCHEMA) -> str:
    """Markdown table of every config key (type, default, bounds, meaning), generated from the schema."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    rows = ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
    for key, sub in _leaves(schema, schema.get("$defs", {})):
        typ = sub.get("type", "")
        typ = " or ".join(typ) if isinstance(typ, list) else typ
        default = sub.get("default", "")
        if isinstance(default, list):
            default = f"{len(default)} item(s)"
        elif default is None:
            default = "null"
        allowed = []
        if "enum" in sub:
            allowed.append(", ".join(map(str, sub["enum"])))
        for bound, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤")):
            if bound in sub:
                allowed.append(f"{sym} {sub[bound]}")
        if "pattern" in sub:
            allowed.append(f"`{sub['pattern']}`")
        desc = " ".join(str(sub.get("description", "")).split())
        rows.append(f"| `{key}` | {typ} | {'`' + str(default) + '`' if default != '' else ''} | "
                    f"{'; '.join(allowed)} | {desc} |")
    return "\n".join(rows)


def check_claims_config(config: dict, merged: set[str]) -> None:
    """Each claim names what its kind compares, and those systems, metrics and merges exist."""
    systems = {s["name"] for s in config["teacher_sampling"]["systems"]}
    systems |= {r["name"] for r in config["training"]["runs"] if r["evaluate"]} | set(merged)
    merges = {m["name"]: m for m in config["merges"]}
    ids = [c["id"] for c in config.get("claims", [])]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"config key claims: duplicate claim ids {sorted({i for i in ids if ids.count(i) > 1})}")
    for c in config.get("claims", []):
        key = f"claims[{c['id']}]"
        if c["metric"] == "hps_average" and not config["evaluation"]["hps"]["enabled"]:
            raise ConfigError(f"config key {key}.metric: hps_average needs evaluation.hps.enabled: true")
        if c["kind"] == "better":
            for side in ("system", "than"):
                if c.get(side) not in systems:
                    raise ConfigError(f"config key {key}.{side}: {c.get(side)!r} is not a configured system or "
                                      f"evaluated run ({sorted(systems)})")
            continue
        m = merges.get(c.get("merge"))
        if m is None:
            raise ConfigError(f"config key {key}.merge: {c.get('merge')!r} is not a declared merge ({sorted(merges)})")
        lams = {float(x) for x in m["lambdas"]}
        if not ({0.0, 1.0} <= lams and lams - {0.0, 1.0}):
            raise ConfigError(f"config key {key}.merge: merge {m['name']!r} has lambdas {sorted(lams)}; an "
                              f"interior_best claim needs 0, 1 and at least one value in between")
