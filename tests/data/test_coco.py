"""COCO data of the real-world protocols: prompt lists, the reference set, the protocol resize."""
import json

import numpy as np
import pytest
from PIL import Image

from sb2bench.data import coco
from sb2bench.evaluate.protocol import protocol_resize


def fake_captions(path, n_images=6, per_image=3):
    images = [{"id": 100 + i, "file_name": f"COCO_val2014_{100 + i:012d}.jpg"} for i in range(n_images)]
    anns = [{"id": 1000 + 10 * i + j, "image_id": 100 + i, "caption": f" caption {j} of image {i} "}
            for i in range(n_images) for j in range(per_image)]
    path.write_text(json.dumps({"images": images, "annotations": anns}))
    return path


def test_dataset_json_first_n_entries(tmp_path):
    f = tmp_path / "dataset.json"
    f.write_text(json.dumps({"labels": [[f"00000/img{i:08d}.png", f"cap {i}"] for i in range(5)]}))
    rows = coco.prompts_from_dataset_json(f, 3)
    assert [r["caption"] for r in rows] == ["cap 0", "cap 1", "cap 2"]
    assert [r["index"] for r in rows] == [0, 1, 2] and rows[1]["source"] == "00000/img00000001.png"
    with pytest.raises(coco.CocoDataError, match="n_prompts asks for 9"):
        coco.prompts_from_dataset_json(f, 9)
    f.write_text(json.dumps([["a", "b"]]))  # the official infer.py's data[:n] bug: a list is not the format
    with pytest.raises(coco.CocoDataError, match="labels"):
        coco.prompts_from_dataset_json(f, 1)


def test_captions_one_per_distinct_image_seeded(tmp_path):
    f = fake_captions(tmp_path / "captions_val2014.json")
    a = coco.prompts_from_captions(f, 4, seed=2014)
    assert a == coco.prompts_from_captions(f, 4, seed=2014)
    assert len({r["image_id"] for r in a}) == 4
    for r in a:
        i = r["image_id"] - 100
        assert r["caption"] in {f"caption {j} of image {i}" for j in range(3)}  # stripped, of its own image
    other = [coco.prompts_from_captions(f, 4, seed=s) for s in range(5)]
    assert any(o != a for o in other)
    with pytest.raises(coco.CocoDataError, match="asks for 7"):
        coco.prompts_from_captions(f, 7, seed=0)


def test_caption_list_text_and_jsonl(tmp_path):
    f = tmp_path / "captions.txt"
    f.write_text("a dog\n\na cat\n{\"caption\": \"a bird\"}\n")
    assert [r["caption"] for r in coco.prompts_from_caption_list(f, 3)] == ["a dog", "a cat", "a bird"]


def test_reference_is_every_image_resized_once(tmp_path):
    val = tmp_path / "val2014"
    val.mkdir()
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(64, 40), (30, 50), (300, 300)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(val / f"img{i + 8}.jpg")
    out = coco.build_reference(val, tmp_path / "ref", 256, expected=3, threads=2)
    assert sorted(p.name for p in out.iterdir()) == ["img10.png", "img8.png", "img9.png"]
    with Image.open(val / "img8.jpg") as im:
        want = np.asarray(protocol_resize(im, 256))
    assert np.array_equal(np.asarray(Image.open(out / "img8.png")), want)
    with pytest.raises(coco.CocoDataError, match="expects 40504"):
        coco.build_reference(val, tmp_path / "ref2", 256, expected=40504)
    assert not (tmp_path / "ref2").exists()


def test_unreadable_or_missing_images_fail_without_output(tmp_path):
    val = tmp_path / "val2014"
    val.mkdir()
    with pytest.raises(coco.CocoDataError, match="no .jpg/.png"):
        coco.build_reference(val, tmp_path / "ref", 256, expected=None)
    Image.new("RGB", (10, 10)).save(val / "a.jpg")
    (val / "b.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(coco.CocoDataError, match="b.jpg: unreadable"):
        coco.build_reference(val, tmp_path / "ref", 256, expected=None)
    assert not (tmp_path / "ref").exists()


def test_natural_order():
    names = ["img10.png", "img9.png", "img100.png"]
    assert sorted(names, key=coco.natural_key) == ["img9.png", "img10.png", "img100.png"]
