"""bench/convergence.py's --init-unet: refused with a message naming the folder or the flag before any training."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.append(str(ROOT / "bench"))  # the bench scripts import their helper _toy_runs by name
import convergence  # noqa: E402


def test_init_unet_without_a_unet_folder_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        convergence.main(["--inits", "turbo", "--init-unet", str(tmp_path), "--work", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "unet/config.json" in err
    assert not (tmp_path / "w").exists()  # refused before any work


def test_init_unet_replaces_only_the_turbo_init(tmp_path, capsys):
    (tmp_path / "unet").mkdir()
    (tmp_path / "unet" / "config.json").write_text("{}")
    with pytest.raises(SystemExit):
        convergence.main(["--inits", "teacher", "--init-unet", str(tmp_path), "--work", str(tmp_path / "w")])
    assert "--inits turbo" in capsys.readouterr().err


def test_diagnostics_keep_only_the_steps_that_logged_them(tmp_path):
    columns = ("step", "loss_vsd", "x0_std", *convergence.DIAGNOSTIC_COLUMNS)
    log = tmp_path / "log.csv"
    lines = [",".join(columns),
             ",".join(["1", "0.5", "0.82", *(str(k / 10) for k in range(len(convergence.DIAGNOSTIC_COLUMNS)))]),
             ",".join(["2", "0.4", "0.83", *([""] * len(convergence.DIAGNOSTIC_COLUMNS))]),
             ",".join(["25", "0.3", "0.90", *(str(k) for k in range(len(convergence.DIAGNOSTIC_COLUMNS)))])]
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "diag.csv"
    assert convergence.write_diagnostics(log, out) == 2
    rows = out.read_text().splitlines()
    assert rows[0].split(",") == ["step", "x0_std", *convergence.DIAGNOSTIC_COLUMNS]  # no loss columns
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "25"]
    assert rows[2].split(",")[1] == "0.90"


def test_diagnostics_of_a_run_never_trained_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        convergence.write_diagnostics(tmp_path / "runs" / "x" / "log.csv", tmp_path / "d.csv")


def test_fid_trend_recovers_a_known_slope_and_a_flat_line():
    rows = [{"step": "", "fid": "15.0"}, {"step": 0, "fid": "113"}]  # a reference row and the init are ignored
    line = rows + [{"step": s, "fid": str(50 - 2.0 * s / 1000 + (0.5 if s % 2000 else -0.5))}
                   for s in range(1000, 9000, 1000)]
    t = convergence.fid_trend(line, 2000)
    assert t["checkpoints"] == 7 and t["from_step"] == 2000 and t["to_step"] == 8000
    assert t["slope_low"] < -2.0 < t["slope_high"] and t["slope_high"] < 0
    flat = rows + [{"step": s, "fid": str(35 + (2 if s % 2000 else -2))} for s in range(1000, 9000, 1000)]
    t = convergence.fid_trend(flat, 1000)
    assert t["slope_low"] < 0 < t["slope_high"]
    with pytest.raises(SystemExit, match="--trend-from 7000: 2 checkpoint"):
        convergence.fid_trend(line, 7000)


def test_trend_from_must_be_a_checkpoint_step_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        convergence.main(["--inits", "teacher", "--steps", "400", "--every", "50", "--trend-from", "75",
                          "--work", str(tmp_path / "w")])
    assert "--trend-from 75" in capsys.readouterr().err and not (tmp_path / "w").exists()


def test_recipe_variants_get_runs_of_their_own():
    """Variants sharing one --work must never resume or score each other's checkpoints; threads do not matter."""
    base = convergence.run_tag_of("swiftbrush", 1000, {})
    assert base == "swiftbrush-1000"
    assert convergence.run_tag_of("swiftbrush", 1000, {"threads": 2, "extend_from": "/w/runs/x"}) == base
    cfg1 = convergence.run_tag_of("swiftbrush", 1000, {"lora_cfg": 1.0})
    cfg45 = convergence.run_tag_of("swiftbrush", 1000, {"lora_cfg": 4.5})
    assert len({base, cfg1, cfg45}) == 3 and cfg1.startswith("swiftbrush-1000-")


def test_a_rewritten_checkpoint_is_exported_again(tmp_path):
    """The exported UNet of a checkpoint is keyed by the checkpoint's content, not its path."""
    import torch
    from safetensors.torch import load_file

    from sb2bench.models import zoo
    from sb2bench.train import checkpoint
    from sb2bench.train.config import TrainConfig

    toy = convergence.toy
    cfg = toy.resolved_run("turbo-init", tmp_path / "work", max_steps=2, seed=0)
    c = TrainConfig.from_dict(cfg)
    which = "ema" if c.ema_decay else "student"
    weights = {n: p.detach().clone() for n, p in zoo.load_unet(c.student_init, c.student_init_subfolder or None)
               .named_parameters()}
    name = next(n for n in weights if n.endswith("conv_out.bias"))
    ckpt, folder = tmp_path / "run" / "checkpoint-2", tmp_path / "students" / "step-2"
    for shift in (0.0, 0.25):
        checkpoint.write(ckpt, {which: {**weights, name: weights[name] + shift}}, {}, {"step": 2})
        exported = load_file(str(convergence.toy.checkpoint_unet(cfg, ckpt, folder)
                                 / "diffusion_pytorch_model.safetensors"))
        assert torch.allclose(exported[name], weights[name] + shift)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "diffusion_pytorch_model.safetensors"]


def test_the_figure_names_an_init_unet_start(tmp_path, monkeypatch):
    """A run started from another UNet (--init-unet) is not labelled as VSD from the hub's turbo."""
    captured = {}
    monkeypatch.setattr(convergence, "save_figure", lambda fig, prefix, *a, **k: captured.setdefault("fig", fig))
    row = dict.fromkeys(convergence.COLUMNS, "")
    metrics = {"fid": "38.0", "precision": "0.83", "recall": "0.73", "attribute_accuracy": "0.77"}
    rows = [{**row, **metrics, "system": "turbo-init from sb-16000 (init)", "init": "turbo", "step": "0"},
            {**row, **metrics, "system": "turbo-init from sb-16000", "init": "turbo", "step": "250"},
            {**row, **metrics, "system": "swiftbrush", "init": "teacher", "step": "250"}]
    convergence.write_figure(rows, tmp_path / "fig")
    labels = {t.get_text() for ax in captured["fig"].axes for t in (ax.get_legend().get_texts() if ax.get_legend()
                                                                   else [])}
    labels |= {t.get_text() for leg in captured["fig"].legends for t in leg.get_texts()}
    assert "VSD from sb-16000" in labels and "VSD from the teacher init" in labels
    assert "VSD from the turbo init" not in labels
