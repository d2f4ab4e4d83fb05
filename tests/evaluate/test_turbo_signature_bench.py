"""bench/turbo_signature.py's helpers: regression overrides are validated against the schema, and the precision
breakdown counts the images the candidate loses (and gains) against the teacher, pairing by prompt."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their helper _toy_runs by name
import turbo_signature  # noqa: E402


def test_regression_overrides_are_validated():
    params = turbo_signature.regression_params(["steps=1500", "lr=3.0e-4", "teacher_cfg=7.5"])
    assert (params["steps"], params["lr"], params["teacher_cfg"]) == (1500, 3.0e-4, 7.5)
    with pytest.raises(SystemExit, match="stepz"):
        turbo_signature.regression_params(["stepz=3"])
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        turbo_signature.regression_params(["steps"])
    with pytest.raises(SystemExit, match="--noise-scales"):  # one source for the scale: the flag
        turbo_signature.regression_params(["noise_scale=0.6"])


def test_row_labels_name_the_whole_recipe():
    """A label lists what differs from the schema's defaults, so that it means the same whatever recipe
    config/default.yaml ships (the hub's turbo changed on 2026-12-02)."""
    base = turbo_signature.regression_params([])
    assert turbo_signature.recipe_name({**base, "noise_scale": 0.6}) == (
        "regressed on 0.6 · z (teacher_cfg=7.5, steps=1500, lr=0.0003)")  # config/default.yaml's recipe
    schema = turbo_signature.validate_config({"toy": {"training": {"turbo": {}}}})["toy"]["training"]["turbo"]
    assert turbo_signature.recipe_name(schema) == "regressed on 1 · z"
    assert turbo_signature.recipe_suffix({**schema, "threads": 1, "n_pairs": 12288}) == " (n_pairs=12288)"


def _per_image(folder: Path, precision: list[int], accuracy: list[float], order: list[int]) -> None:
    folder.mkdir(parents=True)
    np.savez(folder / "per_image.npz", prompt_index=np.array(order), value_precision=np.array(precision),
             value_attribute_accuracy=np.array(accuracy))


def test_precision_misses_counts_lost_and_gained(tmp_path):
    _per_image(tmp_path / "eval" / "teacher-cfg4.5", [1, 1, 1, 0], [1.0, 1.0, 1.0, 1.0], [0, 1, 2, 3])
    _per_image(tmp_path / "eval" / "cand", [1, 0, 0, 1], [1.0, 0.5, 0.0, 1.0], [0, 1, 2, 3])
    m = turbo_signature.precision_misses(tmp_path, "cand")
    assert (m["lost"], m["gained"]) == (2, 1)
    assert m["attribute_accuracy_lost"] == pytest.approx(0.25) and m["attribute_accuracy_kept"] == pytest.approx(1.0)
    _per_image(tmp_path / "eval" / "shuffled", [1, 0, 0, 1], [1.0, 0.5, 0.0, 1.0], [1, 0, 2, 3])
    with pytest.raises(ValueError, match="same prompts"):
        turbo_signature.precision_misses(tmp_path, "shuffled")
