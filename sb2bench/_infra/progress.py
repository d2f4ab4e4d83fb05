"""Progress lines with rate and ETA for long jobs (30K-image sampling, 50k-step training, feature extraction).

A job's log is a file (``> {log} 2>&1``), so a progress bar would fill it with carriage returns; instead one
plain line is printed at most every ``every`` seconds (default 60, ``$SB2BENCH_PROGRESS_SECONDS``; 0 prints every
update), plus the first update and the final one. A 50k-step run thus writes ~1 line a minute, not 50k.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, TextIO

ENV = "SB2BENCH_PROGRESS_SECONDS"
DEFAULT_SECONDS = 60.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {s:02d} s" if m else f"{s} s")


def interval_from_env() -> float:
    """Seconds between lines from ``$SB2BENCH_PROGRESS_SECONDS``; a bad value is an error, not a silent default."""
    raw = os.environ.get(ENV)
    if raw is None or raw == "":
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"${ENV}={raw!r} is not a number of seconds (e.g. 60; 0 prints every update)") from None
    if value < 0:
        raise ValueError(f"${ENV}={raw!r} is negative; give seconds >= 0")
    return value


class Progress:
    """``update(n)`` after each unit of work; lines look like
    ``[sample sd-turbo] 1,024/30,000 img (3.4 %), 85.3 img/s, elapsed 12 s, ETA 5 min 40 s``."""

    def __init__(self, label: str, total: int, unit: str = "it", start: int = 0, every: float | None = None,
                 enabled: bool = True, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit = label, int(total), unit
        self.done = self.start = int(start)  # a resumed job counts its rate from where it resumed
        self.every = interval_from_env() if every is None else every
        self.enabled, self.stream, self.clock = enabled, stream, clock
        self.t0 = clock()
        self.last: float | None = None
        self._last_done = -1
        self.lines = 0

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self.clock()
        if self.done >= self.total or self.last is None or now - self.last >= self.every:
            self._emit(now)

    def _emit(self, now: float) -> None:
        if not self.enabled or self.done == self._last_done:
            return
        elapsed = now - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.done / self.total:.1f} %)" if self.total else ""
        eta = (f", ETA {_duration((self.total - self.done) / rate)}" if rate > 0 and self.done < self.total
               else (", done" if self.done >= self.total else ""))
        print(f"[{self.label}] {self.done:,}/{self.total:,} {self.unit}{pct}, {rate:.3g} {self.unit}/s, "
              f"elapsed {_duration(elapsed)}{eta}", file=self.stream or sys.stdout, flush=True)
        self.last, self._last_done = now, self.done
        self.lines += 1

    def close(self) -> None:
        """The final line, unless the last update already printed it."""
        self._emit(self.clock())
