"""bench/attribute_split.py: FID split by the student's attribute outcome, each part against its own reference."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sb2bench.evaluate.score import write_per_image
from sb2bench.report.claims import PerImage

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their helper _toy_runs by name
import attribute_split  # noqa: E402

N = 300
REF = np.random.default_rng(0).normal(size=(N, 4))
BOOT = {"n_boot": 50, "level": 0.95, "seed": 0, "method": "basic"}


def scored(folder: Path, gen: np.ndarray, right: np.ndarray, noise_seed: int = 0) -> Path:
    folder.mkdir()
    pairing = {"prompts_sha256": "p", "n": N, "noise_seed": noise_seed, "reference_sha256": "r", "protocol": "toy"}
    write_per_image(folder / "per_image.npz", [{"index": i} for i in range(N)], REF, gen,
                    {"attribute_accuracy": right.astype(float), "recall": np.ones(N)}, pairing)
    (folder / "metrics.json").write_text("{}")
    return folder / "metrics.json"


def test_the_gap_lies_where_the_student_renders_attributes_wrong(tmp_path):
    noise = np.random.default_rng(1).normal(size=(N, 4)) * 0.3
    wrong = np.arange(N) < 100  # the student misses a third of the prompts; off by 3 there, like the teacher else
    teacher = scored(tmp_path / "t", REF + noise, np.ones(N, bool))
    student = scored(tmp_path / "s", REF + noise + 3.0 * wrong[:, None], ~wrong)
    rows = {r["part"]: r for r in attribute_split.split(PerImage.load(student), PerImage.load(teacher), BOOT)}
    assert rows["all"]["n"] == N and rows["both right"]["n"] == 200 and rows["student wrong"]["n"] == 100
    assert rows["both right"]["ratio"] == pytest.approx(1.0)
    assert rows["both right"]["ratio_low"] <= 1.0 <= rows["both right"]["ratio_high"]
    assert rows["student wrong"]["ratio_low"] > 5 and rows["all"]["ratio_low"] > 1.5


def test_unpaired_sets_and_missing_arrays_are_refused(tmp_path, capsys):
    right = np.ones(N, bool)
    teacher = scored(tmp_path / "t", REF, right)
    other = scored(tmp_path / "o", REF, right, noise_seed=1)
    with pytest.raises(ValueError, match=r"student and teacher were not scored on the same prompts and noise "
                                         r"\(noise_seed 1 vs 0\)"):
        attribute_split.split(PerImage.load(other), PerImage.load(teacher), BOOT)
    with pytest.raises(SystemExit):
        attribute_split.main(["--teacher", str(teacher), "--system", f"x={tmp_path / 'none' / 'metrics.json'}",
                              "--out", str(tmp_path / "out")])
    assert "x:" in capsys.readouterr().err and not (tmp_path / "out.json").exists()


def test_the_report_names_the_command_that_made_it(tmp_path):
    right = np.ones(N, bool)
    teacher = scored(tmp_path / "t", REF, right)
    student = scored(tmp_path / "s", REF + 0.1, right)
    argv = ["--teacher", str(teacher), "--system", f"student, step 5={student}", "--out", str(tmp_path / "out")]
    attribute_split.main(argv)
    command = f"python bench/attribute_split.py --teacher {teacher} --system 'student, step 5={student}' " \
              f"--out {tmp_path / 'out'}"
    assert json.loads((tmp_path / "out.json").read_text())["command"] == command
    assert f"Made by `{command}`" in (tmp_path / "out.md").read_text()
