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
