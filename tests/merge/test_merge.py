"""Weight merging: exact end points and midpoint, LoRA fusion by hand, and up-front rejections."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sb2bench.merge import interpolate as merge
from sb2bench.models import lora

torch.set_num_threads(1)
TARGETS = ["to_q", "to_v"]
RANK, ALPHA = 4, 8.0


def _unet(path):
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(str(path))


def _state(path):
    return {k: v.clone() for k, v in _unet(path).state_dict().items()}


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tiny_pipeline_dir):
    """A = the tiny pipeline (spec of a pipeline folder), B = a perturbed copy of its UNet (a UNet folder)."""
    root = tmp_path_factory.mktemp("merge")
    unet = _unet(tiny_pipeline_dir / "unet")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in unet.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    unet.save_pretrained(root / "b")
    return {"a": str(tiny_pipeline_dir), "a_unet": tiny_pipeline_dir / "unet", "b": str(root / "b"), "root": root}


def _random_lora_unet(base_dir, seed):
    from peft import LoraConfig

    unet = _unet(base_dir)
    unet.add_adapter(LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS, init_lora_weights=False))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    return unet


def _expected_fused(base_state, lora_tensors, prefix):
    """W + (alpha / rank) * B @ A for every LoRA pair, computed by hand from the saved file."""
    out = {k: v.clone() for k, v in base_state.items()}
    n = 0
    for key, a in lora_tensors.items():
        if ".lora_A." not in key:
            continue
        b = lora_tensors[key.replace(".lora_A.", ".lora_B.")]
        module = key.removeprefix(prefix).split(".lora_A.")[0]
        out[f"{module}.weight"] += (ALPHA / RANK) * (b @ a)
        n += 1
    assert n > 0
    return out


def test_lambda_one_and_zero_are_exact_and_half_is_mean(folders, tmp_path):
    a, b = _state(folders["a_unet"]), _state(folders["b"])
    for lam, expect in ((1.0, a), (0.0, b), (0.5, {k: (a[k] + b[k]) / 2 for k in a})):
        out = merge.merge_unets(folders["a"], folders["b"], lam, tmp_path / f"m{lam}")
        got = _state(out)  # loads with UNet2DConditionModel.from_pretrained
        assert set(got) == set(expect)
        for k in expect:
            assert torch.equal(got[k], expect[k]), (lam, k)
    info = json.loads((tmp_path / "m0.5" / "merge.json").read_text())
    assert info["lambda"] == 0.5 and info["inputs"]["a"]["unet"]["sha256"] and info["versions"]["torch"]
    assert info["inputs"]["a"]["weights_sha256"] == merge.state_sha256(a)
    assert not list(tmp_path.glob(".m*"))  # no temp folders left behind


def test_sweep_writes_every_lambda_as_the_one_lambda_merge_does_loading_each_input_once(folders, tmp_path,
                                                                                         monkeypatch):
    """``sb2bench merge --lam ... --out-sweep``: one job, A and B loaded (a LoRA fused) once, and per λ the same
    weights and merge record as a merge at that λ alone, in the folders plan/paths.py names."""
    from sb2bench.cli import main
    from sb2bench.plan.paths import sweep_lambda_dir

    lora_dir = tmp_path / "lora"
    _random_lora_unet(folders["b"], seed=4).save_lora_adapter(lora_dir)
    lora.write_lora_config(lora_dir, base=folders["b"], rank=RANK, alpha=ALPHA, target_modules=TARGETS)
    lambdas = ["0", "0.25", "1"]
    loads = []
    real_load = lora.load_fused_unet
    monkeypatch.setattr(lora, "load_fused_unet", lambda spec: loads.append(spec) or real_load(spec))
    sweep = tmp_path / "merges" / "ab"
    assert main(["merge", "--a", folders["a"], "--b", str(lora_dir), "--lam", *lambdas, "--out-sweep", str(sweep)],
                warm=False) == 0
    assert loads == [folders["a"], str(lora_dir)]
    assert sorted(p.name for p in sweep.iterdir()) == ["lambda-0", "lambda-0.25", "lambda-1"]
    assert not list(sweep.parent.glob(".ab*"))  # no temporary folder left behind
    for lam in lambdas:
        alone = merge.merge_unets(folders["a"], str(lora_dir), float(lam), tmp_path / f"alone{lam}")
        got, want = _state(sweep_lambda_dir(str(sweep), float(lam))), _state(alone)
        assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want), lam
        rec, ref = (json.loads((Path(f) / "merge.json").read_text()) for f in (sweep_lambda_dir(str(sweep), lam),
                                                                                alone))
        assert rec["lambda"] == float(lam) and rec["weights_sha256"] == ref["weights_sha256"]
        assert rec["inputs"] == ref["inputs"]


def test_sweep_is_all_or_nothing(folders, tmp_path, monkeypatch):
    """A λ out of range is refused before any weights load; a crash on a later λ leaves no sweep folder."""
    with pytest.raises(merge.MergeError, match=r"\[0, 1\]"):
        merge.merge_sweep(folders["a"], folders["b"], [0.5, 1.5], tmp_path / "s")
    with pytest.raises(merge.MergeError, match="same folder"):
        merge.merge_sweep(folders["a"], folders["b"], [0.5, 0.50], tmp_path / "s")
    real_save, calls = merge._save_merged, []

    def crash_on_second(*args):
        calls.append(args[3])
        if len(calls) == 2:
            raise OSError("disk full")
        real_save(*args)
    monkeypatch.setattr(merge, "_save_merged", crash_on_second)
    with pytest.raises(OSError, match="disk full"):
        merge.merge_sweep(folders["a"], folders["b"], [0.0, 0.5, 1.0], tmp_path / "s")
    assert calls == [0.0, 0.5] and list(tmp_path.iterdir()) == []


def test_merge_cli_refuses_several_lambdas_into_one_folder(folders, tmp_path, capsys):
    from sb2bench.cli import main

    assert main(["merge", "--a", folders["a"], "--b", folders["b"], "--lam", "0", "1", "--out", str(tmp_path / "m")],
                warm=False) == 2
    assert "--out-sweep" in capsys.readouterr().err and not (tmp_path / "m").exists()


@pytest.mark.parametrize("layout", ["diffusers", "diffusers_prefixed", "peft"])
def test_lora_fusion_matches_hand_computation(folders, tmp_path, layout):
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict

    lora_dir = tmp_path / "lora"
    unet = _random_lora_unet(folders["b"], seed=2)
    if layout == "diffusers":
        unet.save_lora_adapter(lora_dir)
        file, prefix = lora.LORA_WEIGHTS, ""
    elif layout == "diffusers_prefixed":
        StableDiffusionPipeline.save_lora_weights(lora_dir, unet_lora_layers=get_peft_model_state_dict(unet))
        file, prefix = lora.LORA_WEIGHTS, "unet."
    else:
        lora_state = get_peft_model_state_dict(unet)
        peft_model = get_peft_model(_unet(folders["b"]), LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=TARGETS))
        peft_model.load_state_dict({f"base_model.model.{k.replace('.weight', '.default.weight')}": v
                                    for k, v in lora_state.items()}, strict=False)
        peft_model.save_pretrained(lora_dir)
        file, prefix = lora.PEFT_WEIGHTS, "base_model.model."
    lora.write_lora_config(lora_dir, base=folders["b"], rank=RANK, alpha=ALPHA, target_modules=TARGETS)

    base = _state(folders["b"])
    expected = _expected_fused(base, load_file(str(lora_dir / file)), prefix)
    fused = lora.load_fused_unet(str(lora_dir)).state_dict()
    assert set(fused) == set(expected)
    for k in expected:
        torch.testing.assert_close(fused[k], expected[k], rtol=1e-5, atol=1e-6)
    changed = [k for k in expected if not torch.equal(expected[k], base[k])]
    assert changed and all(any(t in k for t in TARGETS) for k in changed)

    out = merge.merge_unets(str(lora_dir), folders["a"], 1.0, tmp_path / "merged")
    got = _state(out)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6)
    rec = json.loads((out / "merge.json").read_text())["inputs"]["a"]["lora"]
    assert rec["scale"] == ALPHA / RANK and rec["kind"] == ("peft" if layout == "peft" else "diffusers")


def test_rejects_bad_lambda(folders, tmp_path):
    for lam in (-0.1, 1.5, float("nan"), True, "0.5"):
        with pytest.raises(merge.MergeError, match=r"\[0, 1\]"):
            merge.merge_unets(folders["a"], folders["b"], lam, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_rejects_other_architecture_before_loading_weights(folders, tmp_path):
    from diffusers import UNet2DConditionModel

    cfg = dict(UNet2DConditionModel.load_config(str(folders["a_unet"])))
    cfg["block_out_channels"] = [16, 32]
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(cfg))  # config only: no weights to touch
    with pytest.raises(merge.MergeError, match=r"different UNet architectures.*block_out_channels") as err:
        merge.merge_unets(folders["a"], str(other), 0.5, tmp_path / "x")
    assert folders["a"] in str(err.value) and str(other) in str(err.value)
    assert not (tmp_path / "x").exists()


def test_config_bookkeeping_keys_do_not_count(folders, tmp_path):
    from diffusers import UNet2DConditionModel

    cfg = dict(UNet2DConditionModel.load_config(str(folders["a_unet"])))
    cfg["_diffusers_version"] = "0.0.1"
    cfg["_name_or_path"] = "elsewhere"
    cfg.pop("upcast_attention", None)  # absent key == constructor default (False)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    merge.check_compatible(folders["a"], str(tmp_path), 0.5)


def test_lora_folder_without_config_is_explained(folders, tmp_path):
    unet = _random_lora_unet(folders["b"], seed=3)
    unet.save_lora_adapter(tmp_path)
    with pytest.raises(lora.LoraError, match="lora_config.json"):
        merge.merge_unets(str(tmp_path), folders["b"], 0.5, tmp_path / "x")
    lora.write_lora_config(tmp_path, base=folders["b"], rank=RANK + 1, alpha=ALPHA, target_modules=TARGETS)
    with pytest.raises(lora.LoraError, match="rank"):
        lora.load_fused_unet(str(tmp_path))
    lora.write_lora_config(tmp_path, base=folders["b"], rank=RANK, alpha=ALPHA, target_modules=["to_k"])
    with pytest.raises(lora.LoraError, match="target_modules"):
        lora.load_fused_unet(str(tmp_path))
