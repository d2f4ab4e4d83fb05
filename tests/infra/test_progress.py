"""Progress lines: rate and ETA, at most one line per interval plus the first and the final one, so a
50k-step log stays small; the interval comes from $SB2BENCH_PROGRESS_SECONDS."""
import io

import pytest

from sb2bench._infra.progress import Progress, interval_from_env


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_rate_limited_lines_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    p = Progress("train run", 50_000, "step", every=60, stream=out, clock=clock)
    for _ in range(50_000):
        clock.t += 0.25  # 4 steps/s: 12,500 s in all
        p.update()
    p.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 + 12_500 // 60 + 1 == p.lines  # first, one a minute, final
    assert lines[0].startswith("[train run] 1/50,000 step (0.0 %), 4 step/s, elapsed 0 s, ETA 3 h 28 min")
    assert lines[1].startswith("[train run] 241/50,000 step (0.5 %), 4 step/s, elapsed 1 min 00 s, ETA 3 h 27 min")
    assert lines[-1] == "[train run] 50,000/50,000 step (100.0 %), 4 step/s, elapsed 3 h 28 min, done"


def test_resumed_job_counts_its_rate_from_where_it_resumed():
    clock, out = Clock(), io.StringIO()
    p = Progress("train", 100, "step", start=90, every=0, stream=out, clock=clock)
    clock.t = 5.0
    p.update(5)
    assert out.getvalue().startswith("[train] 95/100 step (95.0 %), 1 step/s, elapsed 5 s, ETA 5 s")


def test_disabled_on_other_ranks_and_close_does_not_repeat():
    out = io.StringIO()
    Progress("x", 3, stream=out, enabled=False).update(3)
    assert out.getvalue() == ""
    p = Progress("x", 2, every=0, stream=out)
    p.update(2)
    p.close()
    assert len(out.getvalue().splitlines()) == 1


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("SB2BENCH_PROGRESS_SECONDS", "5")
    assert interval_from_env() == 5 and Progress("x", 1).every == 5
    monkeypatch.delenv("SB2BENCH_PROGRESS_SECONDS")
    assert interval_from_env() == 60
    monkeypatch.setenv("SB2BENCH_PROGRESS_SECONDS", "often")
    with pytest.raises(ValueError, match="SB2BENCH_PROGRESS_SECONDS='often' is not a number"):
        interval_from_env()


def test_feature_extraction_prints_progress(tmp_path, capsys):
    import numpy as np
    import torch
    from PIL import Image

    from sb2bench.evaluate.metrics.fid import folder_features

    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), i * 40, dtype=np.uint8)).save(tmp_path / f"{i:06d}.png")
    feats = folder_features(tmp_path, lambda x: x.float().mean(dim=(2, 3)), batch_size=2, native_size=True)
    assert feats.shape == (5, 3) and isinstance(feats, np.ndarray) and torch.is_tensor(torch.tensor(feats))
    out = capsys.readouterr().out
    assert f"[features {tmp_path}] 2/5 img (40.0 %)" in out and f"[features {tmp_path}] 5/5 img (100.0 %)" in out
