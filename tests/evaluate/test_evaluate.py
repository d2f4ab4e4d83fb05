"""evaluate(): metrics of a toy image set (attribute accuracy scored in the same job), content-keyed feature
cache, refusal of incomplete sets."""
import json

import numpy as np
import pytest
from PIL import Image

from sb2bench.evaluate.score import evaluate
from sb2bench.toyworld.prompt_sets import write_eval_set

MODELS = {"feature_net": "toy:inception-toy", "clip": "toy:clip-toy"}
CLASSIFIER = "toy:classifier-toy"


@pytest.fixture()
def toy_set(tmp_path):
    write_eval_set(0, 24, tmp_path / "prompts.jsonl", tmp_path / "reference")
    return tmp_path


def _copy_images(src, dst, transform=lambda a: a):
    dst.mkdir(exist_ok=True)
    for p in src.glob("*.png"):
        Image.fromarray(transform(np.asarray(Image.open(p)))).save(dst / p.name)


def _run(toy_set, images, out_name="m.json", classifier=None):
    return evaluate(images, toy_set / "reference", toy_set / "prompts.jsonl", "toy", MODELS,
                    toy_set / "cache", toy_set / out_name, classifier)


def test_reference_against_itself(toy_set):
    _copy_images(toy_set / "reference", toy_set / "gen")
    rec = _run(toy_set, toy_set / "gen", classifier=CLASSIFIER)
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


def test_attribute_accuracy_in_the_evaluation_job_equals_the_standalone_command(toy_set):
    """The evaluation job's attributes.json, metric and per-image values are what ``sb2bench attributes`` (the
    former job of its own, now only for the reference renders) computes on the same images."""
    from sb2bench.cli import main

    gen = toy_set / "gen"
    _copy_images(toy_set / "reference", gen, lambda a: np.where(a > 128, 255 - a // 3, a).astype(np.uint8))
    out = toy_set / "sys" / "metrics.json"
    rec = evaluate(gen, toy_set / "reference", toy_set / "prompts.jsonl", "toy", MODELS, toy_set / "cache", out,
                   CLASSIFIER)
    main(["attributes", "--images", str(gen), "--prompts", str(toy_set / "prompts.jsonl"), "--classifier",
          CLASSIFIER, "--out", str(toy_set / "alone.json")], warm=False)
    alone = json.loads((toy_set / "alone.json").read_text())
    inside = json.loads((toy_set / "sys" / "attributes.json").read_text())
    numbers = ("joint_accuracy", "per_attribute", "chance_joint_accuracy", "n", "joint_per_image", "images",
               "prompts", "classifier")
    assert {k: inside[k] for k in numbers} == {k: alone[k] for k in numbers}
    assert 0.0 < alone["joint_accuracy"] < 1.0  # the perturbation leaves some images right and some wrong
    assert rec["metrics"]["attribute_accuracy"] == alone["joint_accuracy"]
    assert json.loads(out.read_text())["metrics"]["attribute_accuracy"] == alone["joint_accuracy"]
    per_image = np.load(toy_set / "sys" / "per_image.npz")["value_attribute_accuracy"]
    assert per_image.tolist() == [float(v) for v in alone["joint_per_image"]]


def test_attribute_accuracy_refuses_prompts_without_attributes_before_any_features(toy_set):
    from sb2bench.data.prompts import read_prompts, write_prompts

    write_prompts(toy_set / "plain.jsonl", [{k: p[k] for k in ("index", "caption")}
                                            for p in read_prompts(toy_set / "prompts.jsonl")])
    _copy_images(toy_set / "reference", toy_set / "gen")
    with pytest.raises(ValueError, match="has no 'attributes'"):
        evaluate(toy_set / "gen", toy_set / "reference", toy_set / "plain.jsonl", "toy", MODELS, toy_set / "cache",
                 toy_set / "m.json", CLASSIFIER)
    assert not (toy_set / "m.json").exists() and not list(toy_set.glob("cache/*.npy"))


def test_bootstrap_intervals_are_recorded_and_deterministic(toy_set):
    _copy_images(toy_set / "reference", toy_set / "gen", lambda a: (a * 0.8).astype(np.uint8))
    boot = {"n_boot": 50, "level": 0.9, "seed": 3}
    run = lambda name: evaluate(toy_set / "gen", toy_set / "reference", toy_set / "prompts.jsonl", "toy",  # noqa: E731
                                MODELS, toy_set / "cache", toy_set / name, CLASSIFIER, "cpu", boot)
    rec = run("a.json")
    ci = rec["intervals"]
    assert set(ci) == {"fid", "kid", "precision", "recall", "clip_score", "attribute_accuracy"}
    for name in ("clip_score", "attribute_accuracy", "precision", "recall"):
        assert ci[name]["low"] <= rec["metrics"][name] <= ci[name]["high"], name
    assert ci["fid"]["low"] < ci["fid"]["high"] and ci["fid"]["level"] == 0.9 and ci["fid"]["n_boot"] == 50
    assert run("b.json")["intervals"] == ci
    assert _run(toy_set, toy_set / "gen", "c.json", CLASSIFIER)["intervals"] == {}  # n_boot absent: off


def test_per_image_arrays_and_named_intervals(toy_set):
    """per_image.npz beside metrics.json holds what a paired claim resamples, in prompt order."""
    gen = toy_set / "gen"
    _copy_images(toy_set / "reference", gen, transform=lambda a: (a // 2).astype(np.uint8))
    rec = evaluate(gen, toy_set / "reference", toy_set / "prompts.jsonl", "toy", MODELS, toy_set / "cache",
                   toy_set / "m" / "metrics.json", bootstrap={"n_boot": 20, "method": "basic"})
    arrays = np.load(toy_set / "m" / "per_image.npz")
    assert list(arrays["prompt_index"]) == list(range(24)) and arrays["gen_features"].shape[0] == 24
    assert arrays["value_precision"].mean() == pytest.approx(rec["metrics"]["precision"])
    assert arrays["value_recall"].mean() == pytest.approx(rec["metrics"]["recall"])
    assert arrays["value_clip_score"].mean() == pytest.approx(rec["metrics"]["clip_score"], rel=1e-5)
    pairing = json.loads(str(arrays["pairing"]))
    assert pairing["n"] == 24 and pairing == rec["pairing"]
    for name in ("fid", "kid", "precision", "recall", "clip_score"):
        iv = rec["intervals"][name]
        assert iv["method"] == "basic" and iv["low"] <= rec["metrics"][name] <= iv["high"], name


def test_subset_prompts_score_like_the_smaller_set(toy_set, tmp_path_factory):
    """evaluation.subset: the first n prompts against the whole set's reference renders score exactly as an
    n-prompt set would (prompts and renders are prefix-stable)."""
    from sb2bench.data.prompts import read_prompts, write_prompts

    write_prompts(toy_set / "first12.jsonl", read_prompts(toy_set / "prompts.jsonl")[:12])
    gen = toy_set / "gen12"
    gen.mkdir()
    for i in range(12):
        img = np.asarray(Image.open(toy_set / "reference" / f"{i:06d}.png"))
        Image.fromarray((img // 2).astype(np.uint8)).save(gen / f"{i:06d}.png")
    sub = evaluate(gen, toy_set / "reference", toy_set / "first12.jsonl", "toy", MODELS, toy_set / "cache",
                   toy_set / "sub.json")
    small = tmp_path_factory.mktemp("small")
    write_eval_set(0, 12, small / "prompts.jsonl", small / "reference")
    alone = evaluate(gen, small / "reference", small / "prompts.jsonl", "toy", MODELS, small / "cache",
                     small / "alone.json")
    for k in ("fid", "precision", "recall", "clip_score"):
        assert sub["metrics"][k] == pytest.approx(alone["metrics"][k], rel=1e-9), k


def test_whole_set_samples_scored_on_the_subset_equal_the_subset_alone(toy_set):
    """evaluation.subset's whole-set systems: their 24 samples scored on the first 12 prompts give exactly
    the metrics of a folder holding only those 12; without --images-superset the extra images are refused."""
    import shutil

    from sb2bench.data.prompts import read_prompts, write_prompts

    write_prompts(toy_set / "head12.jsonl", read_prompts(toy_set / "prompts.jsonl")[:12])
    whole, head = toy_set / "whole24", toy_set / "head12"
    whole.mkdir()
    head.mkdir()
    for i in range(24):
        img = np.asarray(Image.open(toy_set / "reference" / f"{(i + 5) % 24:06d}.png"))
        Image.fromarray(img).save(whole / f"{i:06d}.png")
        if i < 12:
            shutil.copy(whole / f"{i:06d}.png", head / f"{i:06d}.png")
    boot = {"n_boot": 10, "seed": 0, "method": "basic"}
    a = evaluate(whole, toy_set / "reference", toy_set / "head12.jsonl", "toy", MODELS, toy_set / "cache",
                 toy_set / "whole_on_head.json", bootstrap=boot, images_superset=True)
    b = evaluate(head, toy_set / "reference", toy_set / "head12.jsonl", "toy", MODELS, toy_set / "cache",
                 toy_set / "head.json", bootstrap=boot)
    assert a["n"] == 12 and a["metrics"] == b["metrics"] and a["intervals"] == b["intervals"]
    with pytest.raises(ValueError, match="24 images for 12 prompts"):
        evaluate(whole, toy_set / "reference", toy_set / "head12.jsonl", "toy", MODELS, toy_set / "cache",
                 toy_set / "refused.json")


def test_prompts_head_writes_the_subset_and_refuses_too_many(toy_set):
    from sb2bench.cli import main
    from sb2bench.data.prompts import read_prompts

    main(["prompts-head", "--prompts", str(toy_set / "prompts.jsonl"), "--n", "5", "--out", str(toy_set / "h.jsonl")],
         warm=False)
    assert read_prompts(toy_set / "h.jsonl") == read_prompts(toy_set / "prompts.jsonl")[:5]
    with pytest.raises(SystemExit, match="fewer than the 99"):
        main(["prompts-head", "--prompts", str(toy_set / "prompts.jsonl"), "--n", "99", "--out",
              str(toy_set / "x.jsonl")], warm=False)
