"""Progress of a long model job (download, verify, import copy, MLX conversion) as the GUI sees it:
the `Progress` report, a meter that throttles reports and smooths the speed, and byte figures for people."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Phase = Literal["metadata", "downloading", "verifying", "converting", "copying", "done"]
SPEED_SMOOTHING_S = 1.0  # the shown speed follows a change within a few seconds, not every network burst


@dataclass(frozen=True)
class Progress:
    """Where a download (or import) stands. `done`/`total` count bytes of the whole job (all files), not
    one file; during `verifying` they count bytes hashed, during `converting` the converter's fraction of
    the original's real size (an MLX level is made from it). `speed` is bytes/s, `eta_s` None when
    unknown. `copying` is an import's copy."""

    phase: Phase
    file: str
    done: int
    total: int | None
    speed: float = 0.0
    eta_s: float | None = None


ProgressFn = Callable[[Progress], None]


def report(progress: ProgressFn | None, phase: Phase, name: str, done: int, total: int | None = None) -> None:
    """Send one unthrottled report (a phase change); `done` with no total means the job is complete."""
    if progress is not None:
        progress(Progress(phase, name, done, done if total is None and phase == "done" else total))


def human(n: float) -> str:
    """Bytes as a short human figure: 950 bytes, 668 MB, 2.2 GB."""
    if n < 1000:
        return f"{n:.0f} bytes"
    if n < 1e9:
        return f"{n / 1e3:.0f} KB" if n < 1e6 else f"{n / 1e6:.0f} MB"
    return f"{n / 1e9:.1f} GB"


class Meter:
    """Turns byte counts into throttled `Progress` reports with a smoothed speed."""

    def __init__(self, callback: ProgressFn | None, total: int | None, interval: float) -> None:
        self.callback, self.total, self.interval = callback, total, interval
        self.done = 0
        self.speed = 0.0
        self._last_t = time.monotonic()
        self._last_done = 0
        self._last_report = 0.0

    def report(self, phase: Phase, file: str, *, force: bool = False) -> None:
        """Report `done` so far, at most once per interval unless `force`."""
        now = time.monotonic()
        if phase == "downloading" and now - self._last_t >= 0.25:
            inst = (self.done - self._last_done) / (now - self._last_t)
            # Weighted by elapsed time, so slow chunks (long gaps) count as much as the time they cover.
            weight = 1 - math.exp(-(now - self._last_t) / SPEED_SMOOTHING_S)
            self.speed = inst if self.speed == 0 else self.speed + weight * (inst - self.speed)
            self._last_t, self._last_done = now, self.done
        if self.callback is None or (not force and now - self._last_report < self.interval):
            return
        self._last_report = now
        eta = None
        if self.total is not None and self.speed > 0 and phase == "downloading":
            eta = max(0.0, (self.total - self.done) / self.speed)
        self.callback(Progress(phase, file, self.done, self.total, self.speed, eta))

    def restart_speed(self) -> None:
        """After a pause (retry back-off), don't average the silence into the speed."""
        self._last_t, self._last_done = time.monotonic(), self.done
