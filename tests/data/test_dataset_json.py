"""SBv2's dataset.json: fetched (verified) from a pinned URL, refused with the wrong hash before any job, and
offline the error names the file, where to put it and its hash."""
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from sb2bench.data import coco
from sb2bench.plan.config import ConfigError, load_config
from sb2bench.data import dataset_json
from sb2bench.data.dataset_json import DatasetJsonError, fetch
from sb2bench.data.download import ChecksumError


def _fake(path):
    """A file of dataset.json's shape: {"labels": [[path, caption], ...]}."""
    labels = [[f"00000/img{i:08d}.png", f"caption {i} "] for i in range(5)]
    path.write_text(json.dumps({"labels": labels}))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_pinned_values_match_the_published_file():
    assert dataset_json.COMMIT in dataset_json.URL and dataset_json.URL.endswith("/dataset.json")
    assert dataset_json.SHA256 == "94a4cf8ccda5fa251960a9bad3e09c06988e49ac7da98f57c167f37c77e7ed12"
    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml").read_text())
    block = schema["properties"]["evaluation"]["properties"]["coco"]["properties"]
    assert block["dataset_json_url"]["default"] == dataset_json.URL
    assert block["dataset_json_sha256"]["default"] == dataset_json.SHA256


def test_fetch_verifies_and_the_reader_maps_it(tmp_path):
    src = tmp_path / "served.json"
    sha = _fake(src)
    dest = tmp_path / "coco" / "dataset.json"
    assert fetch(dest, src.as_uri(), sha) == dest
    assert [r["caption"] for r in coco.prompts_from_dataset_json(dest, 3)] == ["caption 0", "caption 1", "caption 2"]
    src.unlink()
    assert fetch(dest, src.as_uri(), sha) == dest  # present and verified: no download


def test_wrong_hash_is_refused(tmp_path):
    src = tmp_path / "served.json"
    _fake(src)
    dest = tmp_path / "dataset.json"
    with pytest.raises(ChecksumError, match="does not match"):
        fetch(dest, src.as_uri(), "0" * 64)
    assert not dest.exists() and not (tmp_path / "dataset.json.part").exists()
    dest.write_text('{"labels": []}')
    with pytest.raises(DatasetJsonError, match="is not the pinned"):
        fetch(dest, src.as_uri(), "0" * 64)


def test_unreachable_url_says_where_to_put_the_file(tmp_path):
    dest = tmp_path / "dataset.json"
    with pytest.raises(DatasetJsonError) as exc:
        fetch(dest, (tmp_path / "absent.json").as_uri(), dataset_json.SHA256)
    assert str(dest) in str(exc.value) and dataset_json.SHA256 in str(exc.value)


def _coco_config(tmp_path, **coco_keys):
    (tmp_path / "coco" / "val2014").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hps" / "benchmark").mkdir(parents=True, exist_ok=True)
    (tmp_path / "hps" / "HPS_v2.1_compressed.pt").write_bytes(b"")
    cfg = {"world": "real", "models": {"teacher": "a/b", "turbo": "a/b", "tiny_vae": "a/b", "clip": "ViT-B-32:laion2b_s34b_b79k",
                                       "feature_net": str(tmp_path / "hps" / "HPS_v2.1_compressed.pt"), "hps": "ViT-H-14", "classifier": None},
           "teacher_sampling": {"prompts": "coco", "systems": [{"name": "multi"}]},
           "evaluation": {"protocol": "sbv2", "subset": {"n_prompts": None}, "coco": {"root": str(tmp_path / "coco"), **coco_keys},
                          "hps": {"checkpoint": str(tmp_path / "hps"), "benchmark": str(tmp_path / "hps" / "benchmark")}},
           "training": {"runs": []}, "merges": [], "claims": [], "tables": [], "timing": {"systems": []},
           "figures": {"trade_off": {"curve": [], "points": []}, "loss_curves": {"runs": []},
                       "qualitative": {"systems": []}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_config_refuses_wrong_hash_and_missing_file_offline(tmp_path, monkeypatch):
    bad = tmp_path / "dataset.json"
    _fake(bad)
    with pytest.raises(ConfigError, match=r"evaluation.coco.dataset_json: .*is not the pinned 94a4cf8c"):
        load_config(_coco_config(tmp_path, dataset_json=str(bad)))
    # one's own list: no pinned hash
    load_config(_coco_config(tmp_path, dataset_json=str(bad), dataset_json_sha256=None))
    missing = tmp_path / "nowhere" / "dataset.json"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as exc:
        load_config(_coco_config(tmp_path, dataset_json=str(missing)))
    msg = str(exc.value)
    assert str(missing) in msg and dataset_json.URL in msg and dataset_json.SHA256 in msg and "offline" in msg
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # online: rule coco_dataset_json fetches it
    assert load_config(_coco_config(tmp_path, dataset_json=str(missing)))["evaluation"]["coco"]["dataset_json"]
