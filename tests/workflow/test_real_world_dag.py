"""The real-world path end to end on tiny local stand-ins: COCO folder -> prompts and 256-px reference,
a local diffusers pipeline sampled sharded, protocol resize, clean-fid Inception (a 64-d stub file), CLIP,
HPS from a local checkpoint and benchmark folder, and the evaluation report -- all under protocol sbv2."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sb2bench.models import zoo
from sb2bench.plan.errors import ConfigError
from sb2bench.plan.config import load_config
from sb2bench.evaluate.metrics.bootstrap import per_image_path
from sb2bench.evaluate.metrics.features import CLEANFID_FILE
from sb2bench.evaluate.protocol import HPS_STYLES

ROOT = Path(__file__).resolve().parents[2]


def make_data(root: Path, inception: Path, n_images: int = 10) -> None:
    rng = np.random.default_rng(0)
    val = root / "coco" / "val2014"
    val.mkdir(parents=True)
    images, anns = [], []
    for i in range(n_images):
        w, h = int(rng.integers(40, 90)), int(rng.integers(40, 90))
        name = f"COCO_val2014_{i:012d}.jpg"
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(val / name)
        images.append({"id": i, "file_name": name})
        anns += [{"id": 10 * i + j, "image_id": i, "caption": f"a red circle number {j}"} for j in range(2)]
    (root / "coco" / "annotations").mkdir()
    (root / "coco" / "annotations" / "captions_val2014.json").write_text(
        json.dumps({"images": images, "annotations": anns}))
    shutil.copy(inception, root / CLEANFID_FILE)
    clip_dir = root / "clip"
    shutil.copytree(zoo.resolve("toy:clip-toy").path, clip_dir)
    hps = root / "hps"
    (hps / "benchmark").mkdir(parents=True)
    state = zoo.load_open_clip(str(clip_dir)).model.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, hps / "HPS_v2.1_compressed.pt")
    for style in HPS_STYLES:
        (hps / "benchmark" / f"{style}.json").write_text(json.dumps([f"a blue square, {style}"] * 4))


def real_config(root: Path, pipeline: Path) -> dict:
    return {
        "world": "real",
        "models": {"teacher": str(pipeline), "turbo": str(pipeline), "tiny_vae": str(pipeline),
                   "clip": str(root / "clip"), "feature_net": str(root / CLEANFID_FILE), "hps": str(root / "clip"),
                   "classifier": None},
        "teacher_sampling": {"prompts": "coco", "shards": 2, "batch_size": 3, "threads": 1, "systems": [
            {"name": "multi", "steps": 2, "cfg": 4.5},
            {"name": "onestep", "kind": "onestep"}]},
        "evaluation": {"protocol": "sbv2", "device": "cpu", "bootstrap": {"n_boot": 3}, "subset": {"n_prompts": None},
                       # one thread: every job then forks from one warm interpreter (a 2-thread job would start
                       # a second one); the thread pool itself: tests/data/test_coco.py
                       "coco": {"root": str(root / "coco"), "n_prompts": 6, "n_reference": 10, "resize_threads": 1},
                       "hps": {"enabled": True, "version": "v2.1", "checkpoint": str(root / "hps"),
                               "benchmark": str(root / "hps" / "benchmark"), "n_per_style": 3}},
        # an overlay on config/default.yaml (as --configfile is): replace the toy world's lists
        "training": {"runs": [], "defaults": {}}, "merges": [], "claims": [], "tables": [],
        "timing": {"systems": []},
        "figures": {"trade_off": {"curve": [], "points": []}, "loss_curves": {"runs": []},
                    "qualitative": {"systems": []}},
    }


def test_real_config_errors_name_the_missing_piece(tmp_path, tiny_pipeline_dir, stub_inception):
    make_data(tmp_path, stub_inception)
    cfg = real_config(tmp_path, tiny_pipeline_dir)
    path = tmp_path / "c.yaml"

    def check(mutate, match):
        c = json.loads(json.dumps(cfg))
        mutate(c)
        path.write_text(yaml.safe_dump(c))
        with pytest.raises(ConfigError, match=match):
            load_config(path)

    check(lambda c: c["evaluation"]["coco"].update(root=str(tmp_path / "nope")), "evaluation.coco.root")
    check(lambda c: c["evaluation"].update(protocol="toy"), "evaluation.protocol")
    check(lambda c: c["evaluation"].update(protocol="dmd2"), "evaluation.coco.caption_list")
    check(lambda c: c["evaluation"]["hps"].update(version="v2.0"), "HPS_v2_compressed.pt")
    check(lambda c: c["models"].update(feature_net=str(tmp_path / "missing.pt")), "models.feature_net")
    check(lambda c: c["evaluation"]["coco"].update(download={"enabled": True}), "download.files")
    path.write_text(yaml.safe_dump(cfg))
    assert load_config(path)["evaluation"]["coco"]["caption_seed"] == 2014


@pytest.mark.workflow
def test_real_world_dag_on_local_stand_ins(tmp_path, tiny_pipeline_dir, narrow_stub_inception):
    make_data(tmp_path, narrow_stub_inception)  # 64-d features: FID's sqrtm in ms, not ~20 s (2048-d)
    cfg = tmp_path / "real.yaml"
    cfg.write_text(yaml.safe_dump(real_config(tmp_path, tiny_pipeline_dir)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "-s", str(ROOT / "Snakefile"),
                          "--directory", str(tmp_path), "--configfile", str(cfg)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    res = tmp_path / "results" / "real"
    prompts = [json.loads(x) for x in (res / "data/eval/prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == 6 and len({p["image_id"] for p in prompts}) == 6
    ref = sorted((res / "data/eval/reference").glob("*.png"))
    assert len(ref) == 10 and all(Image.open(p).size == (256, 256) for p in ref)
    resized = res / "samples/onestep/images256"
    assert len(list(resized.glob("*.png"))) == 6 and Image.open(resized / "000000.png").size == (256, 256)
    m = json.loads((res / "metrics/onestep/metrics.json").read_text())
    assert m["protocol"]["name"] == "sbv2" and m["protocol"]["clip_score"]["prefix"] == "A photo depicts "
    assert set(m["metrics"]) == {"fid", "kid", "precision", "recall", "clip_score"} and m["n"] == 6
    assert m["reference"]["path"].endswith("data/eval/reference") and m["device"] == "cpu"
    with np.load(per_image_path(res / "metrics/onestep/metrics.json")) as arrays:  # the network's own width
        assert arrays["gen_features"].shape == (6, 64) and arrays["ref_sigma"].shape == (64, 64)
    h = json.loads((res / "metrics/multi/hps.json").read_text())
    assert h["protocol"]["hps"]["version"] == "v2.1" and h["model"]["checkpoint"].endswith("HPS_v2.1_compressed.pt")
    assert set(h["n"].values()) == {3}
    table = (tmp_path / "reports/real/eval.md").read_text()
    assert "protocol sbv2 v1" in table and "HPS avg" in table and "| onestep |" in table
