"""Progress of a long job on a terminal: a bar redrawn in place, or (output not a terminal) a line at
every tenth, so logs and pipes get progress without control characters. Ctrl+C handling for jobs that
take a cancel Event: the job runs on a worker thread and the Event is set, as the window's Cancel does."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO, TypeVar

from engine.progress import Progress, human

T = TypeVar("T")
WIDTH = 24
PHASES = {"metadata": "Contacting the model hub", "downloading": "Downloading", "verifying": "Checking",
          "converting": "Converting", "copying": "Copying", "done": "Finished"}


class TerminalProgress:
    """Draws progress on `out` (stderr by default)."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self._last: tuple[str, int] = ("", -1)  # what was shown, at which tenth
        self._drawn = False

    def fraction(self, what: str, fraction: float, detail: str = "") -> None:
        """Show `what` at `fraction` (0..1) with an optional detail after it."""
        fraction = min(max(fraction, 0.0), 1.0)
        if self.tty:
            filled = int(fraction * WIDTH)
            line = f"[{'#' * filled}{'.' * (WIDTH - filled)}] {100 * fraction:3.0f} % {what}"
            self.out.write("\r" + (line + (f" · {detail}" if detail else ""))[:160].ljust(100))
            self._drawn = True
        else:
            shown = (what, int(fraction * 10))
            if shown != self._last:
                self._last = shown
                self.out.write(f"{100 * fraction:3.0f} % {what}" + (f" · {detail}" if detail else "") + "\n")
        self.out.flush()

    def download(self, p: Progress) -> None:
        """A model job's report (download, verification, copy, conversion)."""
        what = PHASES.get(p.phase, p.phase)
        if not p.total:
            self.fraction(what, 0.0, human(p.done) if p.done else "")
            return
        detail = f"{human(p.done)} of {human(p.total)}"
        if p.phase == "downloading" and p.speed > 0:
            detail += f" · {human(p.speed)}/s"
        if p.eta_s is not None:
            detail += f" · {int(p.eta_s // 60)} min {int(p.eta_s % 60):02d} s left"
        self.fraction(what, p.done / p.total, detail)

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False


def run_cancellable(job: Callable[[threading.Event], T]) -> tuple[T | None, BaseException | None, bool]:
    """Run `job(cancel)` on a worker thread; Ctrl+C sets `cancel` and waits for the job to stop at its
    next check. Returns (result, the exception it raised, whether Ctrl+C was pressed)."""
    cancel, finished = threading.Event(), threading.Event()
    box: dict[str, object] = {}

    def work() -> None:
        try:
            box["result"] = job(cancel)
        except BaseException as e:  # handed to the caller, on its own thread
            box["error"] = e
        finally:
            finished.set()

    threading.Thread(target=work, name="tinychat-cli-job", daemon=True).start()
    interrupted = False
    # Wait on an Event, not Thread.join: a Ctrl+C that interrupts join() can leave the thread marked
    # as stopped while it still runs, and the job's outcome would be lost.
    while not finished.is_set():
        try:
            finished.wait(0.2)
        except KeyboardInterrupt:
            interrupted = True
            cancel.set()
    return box.get("result"), box.get("error"), interrupted  # type: ignore[return-value]
