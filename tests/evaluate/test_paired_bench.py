"""bench/paired.py: two systems on the same prompts and noise, each metric judged by the claims' paired test."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sb2bench.evaluate.score import write_per_image

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their helper _toy_runs by name
import paired  # noqa: E402

N = 300
REF = np.random.default_rng(0).normal(size=(N, 4))


def scored(folder: Path, gen: np.ndarray, right: np.ndarray, noise_seed: int = 0) -> Path:
    folder.mkdir()
    pairing = {"prompts_sha256": "p", "n": N, "noise_seed": noise_seed, "reference_sha256": "r", "protocol": "toy"}
    write_per_image(folder / "per_image.npz", [{"index": i} for i in range(N)], REF, gen,
                    {"attribute_accuracy": right.astype(float)}, pairing)
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"fid": 1.0, "attribute_accuracy": 0.8}, "n": N,
                                                     "protocol": {"name": "toy"}, "intervals": {}}))
    return folder / "metrics.json"


def test_a_better_system_holds_and_an_equal_metric_is_inconclusive(tmp_path):
    noise = np.random.default_rng(1).normal(size=(N, 4)) * 0.3
    right = np.random.default_rng(2).random(N) < 0.8
    good = scored(tmp_path / "good", REF + noise, right)
    bad = scored(tmp_path / "bad", REF + noise + 1.0, right)  # same attributes, images further from the reference
    out = tmp_path / "cmp.json"
    paired.main(["--system", f"good={good}", "--than", f"bad={bad}", "--metrics", "fid", "attribute_accuracy",
                 "--out", str(out)])
    rows = {r["metric"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["fid"]["verdict"] == "holds" and rows["fid"]["low"] > 0
    assert rows["attribute_accuracy"]["difference"] == pytest.approx(0.0)
    assert rows["attribute_accuracy"]["verdict"] == "inconclusive"
    assert rows["fid"]["low"] <= rows["fid"]["difference"] <= rows["fid"]["high"]


def test_unpaired_or_missing_systems_are_refused(tmp_path):
    right = np.ones(N, bool)
    a = scored(tmp_path / "a", REF, right)
    b = scored(tmp_path / "b", REF, right, noise_seed=1)
    with pytest.raises(ValueError, match="noise_seed"):
        paired.main(["--system", f"a={a}", "--than", f"b={b}", "--metrics", "fid", "--out", str(tmp_path / "x.json")])
    with pytest.raises(SystemExit, match="--than c: .*none/metrics.json or the per_image.npz beside it is missing"):
        paired.main(["--system", f"a={a}", "--than", f"c={tmp_path / 'none' / 'metrics.json'}",
                     "--out", str(tmp_path / "y.json")])
    assert not (tmp_path / "x.json").exists() and not (tmp_path / "y.json").exists()
