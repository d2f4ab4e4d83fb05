"""Report figures on tiny synthetic inputs: the FID-CLIP trade-off, loss curves, the qualitative grid, and
the ``figures`` config block (defaults resolved, unknown names rejected with the key named)."""
import copy
import csv
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from sb2bench.cli import main
from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import validate_config
from sb2bench.plan.figures import figure_jobs, loss_runs, qualitative_indices, trade_off_systems
from sb2bench.report.loss_curves import write_loss_curves
from sb2bench.report.qualitative import PAD, grid_array, write_qualitative
from sb2bench.report.trade_off import write_trade_off

ROOT = Path(__file__).resolve().parents[2]
PROTOCOL = {"name": "toy", "version": 1}


def metrics_file(root: Path, name: str, fid: float, clip: float, intervals: bool = True) -> str:
    rec = {"metrics": {"fid": fid, "clip_score": clip, "precision": 0.5}, "protocol": PROTOCOL, "n": 10}
    if intervals:
        rec["intervals"] = {"fid": {"low": fid - 1.0, "high": fid + 2.0, "level": 0.9},
                            "clip_score": {"low": clip - 0.01, "high": clip + 0.02, "level": 0.9}}
    path = root / name / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    return str(path)


def test_trade_off_plots_and_tabulates_the_input_values(tmp_path):
    curve = [{"name": f"cfg{c}", "label": f"cfg {c}", "metrics": metrics_file(tmp_path, f"cfg{c}", fid, clip)}
             for c, fid, clip in ((2, 8.0, 0.81), (4.5, 15.0, 0.815), (7.5, 22.0, 0.80))]
    points = [{"name": "turbo", "label": "turbo", "metrics": metrics_file(tmp_path, "turbo", 27.5, 0.78)},
              {"name": "plain", "metrics": metrics_file(tmp_path, "plain", 30.0, 0.77, intervals=False)}]
    write_trade_off(curve, points, tmp_path / "out" / "fig")

    with open(tmp_path / "out" / "fig.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["system"] for r in rows] == ["cfg2", "cfg4.5", "cfg7.5", "turbo", "plain"]
    assert [r["group"] for r in rows] == ["curve"] * 3 + ["point"] * 2
    assert float(rows[1]["fid"]) == 15.0 and float(rows[1]["clip_score"]) == 0.815
    assert float(rows[3]["fid_low"]) == 26.5 and float(rows[3]["fid_high"]) == 29.5
    assert float(rows[3]["clip_score_high"]) == pytest.approx(0.80)
    assert rows[4]["label"] == "plain" and rows[4]["fid_low"] == ""  # no interval: empty, not invented
    assert Image.open(tmp_path / "out" / "fig.png").size == (1350, 750)  # 9 x 5 in at 150 dpi
    assert "<svg" in (tmp_path / "out" / "fig.svg").read_text()


def test_trade_off_names_the_file_without_the_metric(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"metrics": {"fid": 1.0}, "protocol": PROTOCOL, "n": 1}))
    with pytest.raises(ValueError, match="m.json: no clip_score"):
        write_trade_off([{"name": "x", "metrics": str(path)}], [], tmp_path / "fig")


def write_log(path: Path, header: list[str], rows: list[list]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def test_loss_curves_draw_only_columns_with_values(tmp_path):
    base = ["step", "elapsed_s", "loss_vsd", "loss_clip", "loss_lora"]
    runs = [
        {"name": "a", "label": "run a",
         "log": write_log(tmp_path / "a" / "log.csv", base, [[1, 0.1, 0.5, "", 0.2], [10, 1.0, 0.4, "", 0.1]])},
        {"name": "b",  # CLIP loss logged, and an optional column present but empty (regulariser off)
         "log": write_log(tmp_path / "b" / "log.csv", base + ["loss_reg"],
                          [[1, 0.1, 0.6, 0.3, 0.2, ""], [10, 1.0, 0.5, 0.2, 0.1, ""]])},
    ]
    panels = write_loss_curves(runs, tmp_path / "out" / "loss")
    assert panels == ["loss_vsd", "loss_lora", "loss_clip"]  # loss_hps absent, loss_reg empty everywhere
    assert Image.open(tmp_path / "out" / "loss.png").size[0] == round(3 * 3.6 * 150)  # 3 panels of 3.6 in
    assert "<svg" in (tmp_path / "out" / "loss.svg").read_text()
    only_vsd = [{"name": "c", "log": write_log(tmp_path / "c" / "log.csv", ["step", "loss_vsd"], [[1, 0.5]])}]
    assert write_loss_curves(only_vsd, tmp_path / "out" / "one") == ["loss_vsd"]
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        write_loss_curves([{"name": "d", "log": str(tmp_path / "missing.csv")}], tmp_path / "out" / "x")


def image_folder(root: Path, red: int, n: int = 4, size: int = 8) -> Path:
    """Image i is a flat colour (red, 40 i, 0): rows and columns of the grid can be told apart."""
    root.mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (size, size), (red, 40 * i, 0)).save(root / f"{i:06d}.png")
    return root


def test_qualitative_grid_rows_are_systems_and_columns_prompts(tmp_path):
    systems = [{"name": f"s{r}", "label": f"system {r}", "images": str(image_folder(tmp_path / f"s{r}", 60 * r))}
               for r in range(3)]
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"index": i, "caption": f"caption number {i}"}) + "\n" for i in range(4)))
    grid = write_qualitative(systems, prompts, [2, 0], tmp_path / "out" / "q")

    tile = 128  # 8-px images upscaled 16x
    assert grid.shape == (3 * (tile + PAD) - PAD, 2 * (tile + PAD) - PAD, 3)
    for r in range(3):
        for c, index in enumerate([2, 0]):
            centre = grid[r * (tile + PAD) + tile // 2, c * (tile + PAD) + tile // 2]
            assert tuple(centre) == (60 * r, 40 * index, 0)
    w, h = Image.open(tmp_path / "out" / "q.png").size
    assert w > grid.shape[1] and h > grid.shape[0]  # the grid plus labels and the prompt list
    md = (tmp_path / "out" / "q.md").read_text()
    assert md.index("1. [2] caption number 2") < md.index("2. [0] caption number 0")
    assert "system 2 (`s2`)" in md and "![qualitative grid](q.png)" in md
    assert "data:image/png;base64" in (tmp_path / "out" / "q.svg").read_text()  # the grid raster, embedded
    with pytest.raises(ValueError, match=r"prompt indices \[7\]"):
        write_qualitative(systems, prompts, [7], tmp_path / "out" / "bad")


def test_qualitative_reduces_large_images_to_a_tile(tmp_path):
    folder = image_folder(tmp_path / "big", 10, n=1, size=300)
    assert grid_array([folder], [0]).shape == (128, 128, 3)


def test_cli_commands_write_the_figures(tmp_path):
    systems = {"curve": [{"name": "t", "label": "t", "metrics": metrics_file(tmp_path, "t", 10.0, 0.8)}],
               "points": [{"name": "s", "label": "s", "metrics": metrics_file(tmp_path, "s", 20.0, 0.7)}]}
    assert main(["report-trade-off", "--systems", json.dumps(systems), "--out-prefix", str(tmp_path / "f")]) == 0
    assert (tmp_path / "f.png").exists() and (tmp_path / "f.svg").exists() and (tmp_path / "f.csv").exists()
    runs = {"runs": [{"name": "r", "log": write_log(tmp_path / "r.csv", ["step", "loss_vsd"], [[1, 0.1], [2, 0.05]])}]}
    assert main(["report-loss-curves", "--runs", json.dumps(runs), "--out-prefix", str(tmp_path / "l")]) == 0
    assert (tmp_path / "l.png").exists() and (tmp_path / "l.svg").exists()
    image_folder(tmp_path / "imgs", 0, n=2)
    (tmp_path / "p.jsonl").write_text('{"index": 0, "caption": "a"}\n{"index": 1, "caption": "b"}\n')
    grid = {"systems": [{"name": "x", "images": str(tmp_path / "imgs")}]}
    assert main(["report-qualitative", "--systems", json.dumps(grid), "--prompts", str(tmp_path / "p.jsonl"),
                 "--indices", "1", "0", "--out-prefix", str(tmp_path / "q")]) == 0
    assert (tmp_path / "q.png").exists() and "[1] b" in (tmp_path / "q.md").read_text()
    assert main(["report-loss-curves", "--runs", json.dumps({"runs": [{"name": "z", "log": "nope.csv"}]}),
                 "--out-prefix", str(tmp_path / "z")]) == 2


def smoke() -> dict:
    """A small standalone config: two systems, two runs, one merge (validated alone, not over the default)."""
    return yaml.safe_load((ROOT / "tests" / "data" / "mini_config.yaml").read_text())


def test_empty_figure_lists_pick_the_defaults():
    cfg = validate_config(smoke())
    curve, points = trade_off_systems(cfg)
    assert curve == ["teacher-cfg4.5"]  # the only multi-step system on the teacher
    assert points == ["turbo-1step", "vsd-full", "vsd-lora-clip", "ab-0.5"]
    assert loss_runs(cfg) == ["vsd-full", "vsd-lora-clip"]
    assert qualitative_indices(cfg) == list(range(6))
    jobs = figure_jobs(cfg, "results/toy")
    assert jobs["loss_curves"]["inputs"] == ["results/toy/runs/vsd-full/student",
                                             "results/toy/runs/vsd-lora-clip/student"]
    assert jobs["loss_curves"]["spec"]["runs"][0]["log"] == "results/toy/runs/vsd-full/log.csv"
    assert jobs["trade_off"]["spec"]["points"][1]["label"] == "VSD, full student"
    assert [s["name"] for s in jobs["qualitative"]["spec"]["systems"]] == [
        "teacher-cfg4.5", "turbo-1step", "vsd-full", "vsd-lora-clip", "ab-0.5"]

    cfg = smoke()
    cfg["teacher_sampling"]["systems"].insert(0, {"name": "cfg7", "cfg": 7.0})
    cfg["teacher_sampling"]["systems"].append({"name": "rand", "unet": "random"})
    cfg.setdefault("figures", {}).setdefault("qualitative", {})["n_prompts"] = 20  # more than the 8 prompts of the smoke evaluation set
    cfg = validate_config(cfg)
    assert trade_off_systems(cfg)[0] == ["teacher-cfg4.5", "cfg7"]  # by cfg; a random UNet is no teacher
    assert qualitative_indices(cfg) == list(range(8))


@pytest.mark.parametrize("figures, key", [
    ({"trade_off": {"points": ["turbo-1step", "nope"]}}, "figures.trade_off.points[1]"),
    ({"trade_off": {"curve": ["teacher-cfg4.5", "teacher-cfg4.5"]}}, "figures.trade_off.curve[1]"),
    ({"trade_off": {"curve": ["turbo-1step"], "points": ["turbo-1step"]}}, "figures.trade_off.points"),
    ({"loss_curves": {"runs": ["vsd-full", "ab-0.5"]}}, "figures.loss_curves.runs[1]"),
    ({"qualitative": {"systems": ["missing"]}}, "figures.qualitative.systems[0]"),
    ({"qualitative": {"indices": [0, 8]}}, "figures.qualitative.indices[1]"),
    ({"qualitative": {"n_prompts": 0}}, "figures.qualitative.n_prompts"),
    ({"bogus": {}}, "figures"),
])
def test_bad_figure_entries_name_the_key(figures, key):
    cfg = copy.deepcopy(smoke())
    cfg["figures"] = figures
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert f"config key {key}:" in str(err.value)


def test_default_config_figures_name_configured_systems():
    cfg = validate_config(yaml.safe_load((ROOT / "config" / "default.yaml").read_text()))  # checks every name
    curve, points = trade_off_systems(cfg)
    assert curve == ["teacher-cfg1", "teacher-cfg2", "teacher-cfg4.5", "teacher-cfg7.5"]
    assert {"turbo-1step", "swiftbrush", "model-a", "model-b", "ab-0.5"} <= set(points)
    assert loss_runs(cfg) == cfg["figures"]["loss_curves"]["runs"]  # first seeds only: no replicas
    assert not any(r.endswith(("-seed1", "-seed2")) for r in loss_runs(cfg))
