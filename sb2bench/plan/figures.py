"""Which systems and runs each report figure draws (config ``figures``): explicit lists, or defaults.

Empty lists mean defaults, resolved here once so the workflow, the CLI and the checks agree:
the trade-off curve is the teacher's cfg sweep (multi-step systems on the teacher itself, by cfg),
its points every one-step system (turbo, trained students, merges), the loss curves every training
run, and the qualitative grid the first evaluated systems.
"""
from __future__ import annotations

from sb2bench.plan.merges import merge_systems
from sb2bench.plan.runs import run_dir, run_system, student_dir

QUALITATIVE_DEFAULT_ROWS = 8  # rows of the qualitative grid when figures.qualitative.systems is empty


def _results(config: dict) -> str:
    return f"results/{config['world']}"  # the workflow's RESULTS


def evaluated_systems(config: dict) -> dict[str, dict]:
    """Every system that is sampled and scored, in workflow order: sampled, evaluated runs, merges."""
    systems = {s["name"]: s for s in config["teacher_sampling"]["systems"]}
    results = _results(config)
    systems.update({r["name"]: run_system(config, r, results) for r in config["training"]["runs"]
                    if r.get("evaluate", True)})
    systems.update(merge_systems(config, results))
    return systems


def _is_teacher_sweep(system: dict, teacher: str) -> bool:
    """A multi-step system that samples the teacher itself (no UNet override, the teacher's pipeline)."""
    return (system.get("kind", "multistep") == "multistep" and not system.get("unet")
            and system.get("pipeline", teacher) == teacher)


def trade_off_systems(config: dict) -> tuple[list[str], list[str]]:
    """(curve, points) of the FID-CLIP figure: the configured lists, or their defaults."""
    fig = config["figures"]["trade_off"]
    systems = evaluated_systems(config)
    curve = fig["curve"] or sorted(
        (n for n, s in systems.items() if _is_teacher_sweep(s, config["models"]["teacher"])),
        key=lambda n: (float(systems[n].get("cfg", 4.5)), int(systems[n].get("steps", 25))))
    points = fig["points"] or [n for n, s in systems.items() if s.get("kind") == "onestep" and n not in curve]
    return list(curve), list(points)


def loss_runs(config: dict) -> list[str]:
    """Training runs of the loss-curve figure: the configured list, or every run."""
    return list(config["figures"]["loss_curves"]["runs"] or [r["name"] for r in config["training"]["runs"]])


def qualitative_systems(config: dict) -> list[str]:
    """Rows of the qualitative grid: the configured list, or the first evaluated systems."""
    fig = config["figures"]["qualitative"]
    return list(fig["systems"] or list(evaluated_systems(config))[:QUALITATIVE_DEFAULT_ROWS])


def qualitative_indices(config: dict) -> list[int]:
    """Prompt indices (columns) of the qualitative grid: the configured ones, or the first n_prompts of
    the prompt set."""
    fig = config["figures"]["qualitative"]
    if fig["indices"]:
        return list(fig["indices"])
    size = _eval_set_size(config)
    if size is None:  # a prompt file: its own indices
        from sb2bench.data.prompts import read_prompts

        return [p["index"] for p in read_prompts(config["teacher_sampling"]["prompts"])[:fig["n_prompts"]]]
    return list(range(min(fig["n_prompts"], size)))


def figure_jobs(config: dict, results: str) -> dict[str, dict]:
    """Per figure with something to draw: ``spec`` (the JSON its ``sb2bench report-*`` command reads),
    ``inputs`` (the files its rule waits for) and, for the grid, ``indices``. Computed here so that
    ``rules/figures.smk`` holds rules only."""
    systems = evaluated_systems(config)

    def label(name: str) -> str:
        return systems[name].get("label") or name

    jobs: dict[str, dict] = {}
    curve, points = trade_off_systems(config)
    if curve or points:
        metrics = {n: f"{results}/metrics/{n}/metrics.json" for n in curve + points}
        jobs["trade_off"] = {"spec": {part: [{"name": n, "label": label(n), "metrics": metrics[n]} for n in names]
                                      for part, names in (("curve", curve), ("points", points))},
                             "inputs": list(metrics.values())}
    runs = {r["name"]: r for r in config["training"]["runs"]}
    names = loss_runs(config)
    if names:
        jobs["loss_curves"] = {
            "spec": {"runs": [{"name": n, "label": runs[n].get("label") or n, "log": f"{run_dir(results, n)}/log.csv"}
                              for n in names]},
            "inputs": [student_dir(results, n) for n in names]}  # log.csv is complete once the student is
    rows = qualitative_systems(config)
    if rows:
        jobs["qualitative"] = {
            "spec": {"systems": [{"name": n, "label": label(n), "images": f"{results}/samples/{n}/images"}
                                 for n in rows]},
            "inputs": [f"{results}/samples/{n}/images" for n in rows], "indices": qualitative_indices(config)}
    return jobs


def _eval_set_size(config: dict) -> int | None:
    prompts = config["teacher_sampling"]["prompts"]
    if prompts == "toy_eval":
        return config["toy"]["eval_set"]["n_prompts"]
    if prompts == "coco":
        return config["evaluation"]["coco"]["n_prompts"]
    return None  # a prompt file: its indices are checked when the grid is drawn


def _check_names(key: str, names: list[str], known: dict | set, what: str) -> None:
    from sb2bench.plan.errors import ConfigError

    seen = set()
    for i, name in enumerate(names):
        if name not in known:
            raise ConfigError(f"config key {key}[{i}]: {name!r} is not {what} ({sorted(known)})")
        if name in seen:
            raise ConfigError(f"config key {key}[{i}]: {name!r} is listed twice")
        seen.add(name)


def check_figures(config: dict) -> None:
    """Every system or run a figure names exists; prompt indices lie inside the evaluation set."""
    from sb2bench.plan.errors import ConfigError

    fig = config["figures"]
    systems = evaluated_systems(config)
    what = "a configured system, evaluated run or merge system"
    for part in ("curve", "points"):
        _check_names(f"figures.trade_off.{part}", fig["trade_off"][part], systems, what)
    both = set(fig["trade_off"]["curve"]) & set(fig["trade_off"]["points"])
    if both:
        raise ConfigError(f"config key figures.trade_off.points: {sorted(both)} also on the curve; list each "
                          f"system in one of curve and points")
    _check_names("figures.loss_curves.runs", fig["loss_curves"]["runs"],
                 {r["name"] for r in config["training"]["runs"]}, "a run in training.runs")
    _check_names("figures.qualitative.systems", fig["qualitative"]["systems"], systems, what)
    size = _eval_set_size(config)
    for i, index in enumerate(fig["qualitative"]["indices"]):
        if size is not None and index >= size:
            raise ConfigError(f"config key figures.qualitative.indices[{i}]: prompt {index} is outside the "
                              f"evaluation set (indices 0 .. {size - 1})")
