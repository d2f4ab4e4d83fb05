"""Loss log: a CSV with fixed columns (and TensorBoard when installed and asked for).

On resume the rows after the checkpoint's step are dropped, so the CSV of an interrupted and
resumed run reads exactly like an uninterrupted one.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path

from sb2bench._infra.atomic import atomic_file

COLUMNS = ("step", "elapsed_s", "loss_vsd", "loss_clip", "clip_weight", "clip_cos", "loss_lora",
           "grad_norm_student", "grad_norm_lora", "x0_std", "x0_mean", "lr_student", "lr_lora",
           "nonfinite_skips")
HPS_COLUMNS = ("loss_hps", "hps_weight", "hps")  # only in runs with the HPSv2 loss on
REG_COLUMNS = ("loss_reg",)                    # only in runs with the regulariser on


class RunLog:
    def __init__(self, path: Path, resume_step: int, tensorboard_dir: Path | None = None,
                 extra_columns: tuple[str, ...] = ()):
        self.path = Path(path)
        self.columns = COLUMNS + tuple(extra_columns)  # a run without optional losses keeps the old header
        self.t0 = time.time()
        self._truncate(resume_step)
        self.tb = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("[train] tensorboard requested but not installed; logging to CSV only", flush=True)
            else:
                self.tb = SummaryWriter(str(tensorboard_dir), purge_step=resume_step + 1)

    def _truncate(self, resume_step: int) -> None:
        rows = []
        if self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with atomic_file(self.path) as f:
            w = csv.DictWriter(f, fieldnames=self.columns)
            w.writeheader()
            w.writerows(rows)

    def write(self, step: int, values: dict[str, float]) -> None:
        row = {k: values.get(k, "") for k in self.columns}
        row["step"], row["elapsed_s"] = step, round(time.time() - self.t0, 2)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)
        if self.tb is not None:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(k, v, step)
        text = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items() if v != "")
        print(f"[train] {text}", flush=True)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
