"""evaluate(): metrics of a toy image set, content-keyed feature cache, refusal of incomplete sets."""
import json

import numpy as np
import pytest
from PIL import Image

from sb2bench.evaluate.score import evaluate
from sb2bench.toyworld.prompt_sets import write_eval_set

MODELS = {"feature_net": "toy:inception-toy", "clip": "toy:clip-toy"}


@pytest.fixture()
def toy_set(tmp_path):
    write_eval_set(0, 24, tmp_path / "prompts.jsonl", tmp_path / "reference")
    return tmp_path


def _copy_images(src, dst, transform=lambda a: a):
    dst.mkdir(exist_ok=True)
    for p in src.glob("*.png"):
        Image.fromarray(transform(np.asarray(Image.open(p)))).save(dst / p.name)


def _run(toy_set, images, out_name="m.json", attributes=None):
    return evaluate(images, toy_set / "reference", toy_set / "prompts.jsonl", "toy", MODELS,
                    toy_set / "cache", toy_set / out_name, attributes)


def _attributes(toy_set, images):
    from sb2bench._infra.atomic import write_json
    from sb2bench.evaluate.metrics.attributes import attribute_accuracy

    path = toy_set / f"{images.name}-attributes.json"
    write_json(path, attribute_accuracy(images, toy_set / "prompts.jsonl", "toy:classifier-toy"))
    return path


def test_reference_against_itself(toy_set):
    _copy_images(toy_set / "reference", toy_set / "gen")
    rec = _run(toy_set, toy_set / "gen", attributes=_attributes(toy_set, toy_set / "gen"))
    m = rec["metrics"]
    assert abs(m["fid"]) < 1e-3 and m["precision"] == 1.0 and m["recall"] == 1.0
    assert m["attribute_accuracy"] > 0.95 and m["clip_score"] > 0.5
    saved = json.loads((toy_set / "m.json").read_text())
    assert saved["protocol"]["name"] == "toy" and saved["n"] == 24 and "versions" in saved


def test_regenerated_images_under_the_same_path_change_the_metrics(toy_set):
    gen = toy_set / "gen"
    _copy_images(toy_set / "reference", gen)
    first = _run(toy_set, gen)["metrics"]["fid"]
    _copy_images(toy_set / "reference", gen, transform=lambda a: (255 - a).astype(np.uint8))  # new content
    second = _run(toy_set, gen)["metrics"]["fid"]
    assert second > first + 10
    # keyed by content: the first generation equals the reference (one entry), the inverted one is new
    assert len(list((toy_set / "cache").glob("*.npy"))) == 2


def test_incomplete_or_wrong_sized_sets_write_nothing(toy_set):
    gen = toy_set / "gen"
    _copy_images(toy_set / "reference", gen)
    (gen / "000003.png").unlink()
    with pytest.raises(ValueError, match="23 images for 24 prompts"):
        _run(toy_set, gen)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(gen / "000003.png")
    with pytest.raises(ValueError, match="sizes"):
        _run(toy_set, gen)
    (gen / "000003.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="unreadable"):
        _run(toy_set, gen)
    assert not (toy_set / "m.json").exists()


def test_attribute_file_of_other_images_is_refused(toy_set):
    _copy_images(toy_set / "reference", toy_set / "gen")
    with pytest.raises(ValueError, match="not .*gen"):
        _run(toy_set, toy_set / "gen", attributes=_attributes(toy_set, toy_set / "reference"))
    assert not (toy_set / "m.json").exists()


def test_bootstrap_intervals_are_recorded_and_deterministic(toy_set):
    _copy_images(toy_set / "reference", toy_set / "gen", lambda a: (a * 0.8).astype(np.uint8))
    attrs = _attributes(toy_set, toy_set / "gen")
    boot = {"n_boot": 50, "level": 0.9, "seed": 3}
    run = lambda name: evaluate(toy_set / "gen", toy_set / "reference", toy_set / "prompts.jsonl", "toy",  # noqa: E731
                                MODELS, toy_set / "cache", toy_set / name, attrs, "cpu", boot)
    rec = run("a.json")
    ci = rec["intervals"]
    assert set(ci) == {"fid", "kid", "precision", "recall", "clip_score", "attribute_accuracy"}
    for name in ("clip_score", "attribute_accuracy", "precision", "recall"):
        assert ci[name]["low"] <= rec["metrics"][name] <= ci[name]["high"], name
    assert ci["fid"]["low"] < ci["fid"]["high"] and ci["fid"]["level"] == 0.9 and ci["fid"]["n_boot"] == 50
    assert run("b.json")["intervals"] == ci
    assert _run(toy_set, toy_set / "gen", "c.json", attrs)["intervals"] == {}  # n_boot absent: off
