"""Attribute accuracy: scoring rules, and a classifier that reads renders back."""
import json

import numpy as np
import pytest
import torch

from sb2bench.evaluate.metrics.attributes import score, targets
from sb2bench.toyworld import world
from sb2bench.toyworld.prompt_sets import training_prompts, write_eval_set


def test_joint_accuracy_counts_only_mentioned_attributes():
    labels = np.array([[0, 1, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]])
    preds = np.array([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0]])  # row 0 wrong only where unmentioned
    mentioned = np.array([[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 1]], dtype=bool)
    out = score(preds, labels, mentioned)
    assert out["joint_accuracy"] == 0.5
    assert out["per_attribute"]["style"] == 0.0 and out["per_attribute"]["size"] is None
    assert out["chance_joint_accuracy"] == pytest.approx((1 / 12 + 1 / 48) / 2)


def test_eval_set_rows_match_reference_renders(tmp_path):
    write_eval_set(3, 5, tmp_path / "p.jsonl", tmp_path / "ref")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(5))
    labels, mentioned = targets(rows)
    assert mentioned[:, :2].all()  # shape and colour always named
    assert sorted(p.name for p in (tmp_path / "ref").iterdir()) == [f"{i:06d}.png" for i in range(5)]
    scene = world.make_scenes(2_000 + 3, 1)[0]
    assert rows[0]["caption"] == scene.caption


def test_eval_set_needs_prompts(tmp_path):
    with pytest.raises(ValueError, match="at least one"):
        write_eval_set(0, 0, tmp_path / "p.jsonl", tmp_path / "ref")
    assert not (tmp_path / "p.jsonl").exists()


def test_training_stream_is_disjoint_from_eval_and_deterministic():
    a, b = training_prompts(0, 20), training_prompts(0, 20)
    assert a == b
    assert training_prompts(0, 5, start=15) == a[15:]
    eval_caps = [s.caption for s in world.make_scenes(2_000, 20)]
    assert [r["caption"] for r in a] != eval_caps


def test_prompts_without_attributes_are_rejected():
    with pytest.raises(ValueError, match="toy prompt set"):
        targets([{"index": 0, "caption": "a photo of a cat"}])


def test_trained_classifier_reads_renders(tmp_path):
    """A few steps of the real classifier recipe already beat chance by a wide margin on colour."""
    from sb2bench.toyworld.train_attribute_nets import heldout_accuracy, load_classifier, train_classifier

    torch.manual_seed(0)
    cfg = {"seed": 0, "n_images": 128, "steps": 20, "batch_size": 32, "lr": 0.003}  # colour ~0.9 here
    metrics = train_classifier(tmp_path / "cls", cfg)
    net = load_classifier(tmp_path / "cls")
    batch = world.make_dataset(5, 64)
    acc = heldout_accuracy(net, torch.from_numpy(batch.images).permute(0, 3, 1, 2).float() / 255,
                           torch.from_numpy(batch.labels))
    assert acc["colour"] > 0.6  # chance is 0.25
    assert metrics["heldout_accuracy"]["colour"] > 0.6
