"""HPS benchmark: style prompt sets, per-style and averaged scores, version and checkpoint handling."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from sb2bench.models import zoo
from sb2bench.evaluate.hps_benchmark import (HPS_METRIC, benchmark_prompts, evaluate_hps, load_hps_model, toy_style_prompts,
                                    write_style_prompts)
from sb2bench.evaluate.metrics.hps import hps_scores
from sb2bench.data.prompts import read_prompts
from sb2bench.evaluate.protocol import HPS_STYLES


def test_toy_style_sets_name_their_style_and_differ():
    suffix = {"anime": "anime style", "concept-art": "concept art", "paintings": "painting", "photo": "photo"}
    for style in HPS_STYLES:
        rows = toy_style_prompts(style, 20, seed=0)
        assert len(rows) == 20 and all(suffix[style] in r["caption"] for r in rows)
        assert rows == toy_style_prompts(style, 20, seed=0)
    assert toy_style_prompts("anime", 5, 0) != toy_style_prompts("anime", 5, 1)


def test_benchmark_files_are_read_and_missing_ones_named(tmp_path):
    (tmp_path / "anime.json").write_text(json.dumps(["p0", "p1", "p2"]))
    assert [r["caption"] for r in benchmark_prompts(tmp_path, "anime", 2)] == ["p0", "p1"]
    with pytest.raises(FileNotFoundError, match="photo.json"):
        benchmark_prompts(tmp_path, "photo", None)
    with pytest.raises(ValueError, match="unknown HPS style"):
        write_style_prompts(tmp_path / "x.jsonl", "cubism", 2, 0, None)


def test_bare_architecture_needs_a_checkpoint():
    with pytest.raises(FileNotFoundError, match="evaluation.hps.checkpoint"):
        load_hps_model("ViT-H-14", "v2.1", None)
    with pytest.raises(ValueError, match="v2.0"):
        load_hps_model("toy:clip-toy", "v3", None)


def test_scores_per_style_and_average_equal_hand_computation(tmp_path):
    rng = np.random.default_rng(0)
    folders, prompt_files, expected = {}, {}, {}
    clip = zoo.load_open_clip("toy:clip-toy")
    for k, style in enumerate(HPS_STYLES):
        prompt_files[style] = tmp_path / f"{style}.jsonl"
        write_style_prompts(prompt_files[style], style, 3, 0, None)
        folders[style] = tmp_path / style
        folders[style].mkdir()
        arrays = []
        for r in read_prompts(prompt_files[style]):
            a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(a).save(folders[style] / f"{r['index']:06d}.png")
            arrays.append(a)
        images = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255).permute(0, 3, 1, 2)
        with torch.no_grad():
            expected[style] = hps_scores(clip.model, clip.tokenizer, images,
                                         [r["caption"] for r in read_prompts(prompt_files[style])]).mean().item()
    rec = evaluate_hps(folders, prompt_files, "toy", "v2.1", "toy:clip-toy", None, tmp_path / "hps.json")
    for style in HPS_STYLES:
        assert rec["metrics"][HPS_METRIC[style]] == pytest.approx(expected[style], abs=1e-4)
    assert rec["metrics"]["hps_average"] == pytest.approx(np.mean(list(expected.values())), abs=1e-4)
    assert rec["n"] == {s: 3 for s in HPS_STYLES} and "version" not in rec["protocol"]["hps"]
    assert json.loads((tmp_path / "hps.json").read_text())["metrics"] == rec["metrics"]

    (folders["photo"] / "000001.png").unlink()
    with pytest.raises(FileNotFoundError, match="000001.png"):
        evaluate_hps(folders, prompt_files, "toy", "v2.1", "toy:clip-toy", None, tmp_path / "again.json")
