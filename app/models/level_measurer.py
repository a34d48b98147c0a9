""""Measure on this computer" for the window: levels measured one by one on the engine thread, with
progress, Cancel and the figures kept, and the recommendation drawn from them.

Each level is its own task on the engine thread (EngineThread.queue_work), and the next one is queued
only when the last has ended: an answer the user asks for meanwhile runs before the next level, so it
waits for at most one level's measurement, never for all of them. The measurement itself is
app/core/level_measure.py, the same as `tinychat models bench`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from PySide6.QtCore import QObject, Signal

from app.background.engine_worker import EngineThread
from app.background.tasks import Task
from app.core.level_advice import Advice, recommend
from app.core.level_measure import levels_in_use, measure_installed, measured, results_store, threads_for
from app.models.model_switcher import ModelSwitcher
from engine.hardware import available_memory
from engine.level_bench import LevelFigures
from engine.level_logits import MeasurementCancelled
from engine.model_inventory import InstalledModel, ModelInventory
from engine.types import EngineError

log = logging.getLogger(__name__)

CANCELLED = "Measurement cancelled. Levels measured before it are kept."
UNEXPECTED = "The measurement stopped with an unexpected error. Try again; details are in the log file."
STAGES = {"speed": "speed and memory", "quality": "answer quality", "done": "done"}


class LevelMeasurer(QObject):
    """Measures installed levels in the background. Call every method on the GUI thread."""

    progress = Signal(str, float)  # what is being measured, fraction of the whole request
    measured = Signal()  # figures of one more level were kept
    ended = Signal(str)  # the request is over: a sentence saying how
    busyChanged = Signal(bool)

    def __init__(self, engine: EngineThread, switcher: ModelSwitcher, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.switcher = switcher
        self.results = results_store()
        self._queue: list[InstalledModel] = []
        self._total = 0
        self._task: Task[list[LevelFigures]] | None = None
        self._cancelled = False

    # ------------------------------------------------------------------ what is known
    def levels(self) -> list[InstalledModel]:
        """The installed levels of the model in the settings, for the engine that runs here."""
        return levels_in_use(self.switcher.manager, self.switcher.settings.current)

    def figures(self) -> dict[str, LevelFigures]:
        """Figures kept for those levels on this computer, with the current thread setting (by installed id)."""
        return measured(self.results, self.levels(), threads_for(self.switcher.settings.current))

    def advice(self) -> Advice:
        """The recommendation from the figures kept, with its reason."""
        return recommend(list(self.figures().values()), available_memory())

    @property
    def busy(self) -> bool:
        return self._task is not None

    # ------------------------------------------------------------------ measuring
    def measure(self, targets: Sequence[InstalledModel]) -> None:
        """Measure `targets` one after another (ignored while a measurement runs)."""
        if self.busy or not targets:
            return
        self._queue = list(targets)
        self._total = len(self._queue)
        self._cancelled = False
        self.busyChanged.emit(True)
        self._next()

    def cancel(self) -> None:
        """Stop the level being measured and drop the ones still waiting; what was measured stays kept."""
        self._queue.clear()
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()

    def _next(self) -> None:
        if not self._queue:
            self._finish(f"Measured {self._total} level{'s' if self._total != 1 else ''} on this computer.")
            return
        target = self._queue.pop(0)
        done = self._total - len(self._queue) - 1
        # Read on the engine thread through its own inventory: the download thread owns the manager.
        manager, settings = self.switcher.manager, self.switcher.settings.current
        inventory = ModelInventory(manager.root, manager.catalog)
        threads = threads_for(settings)

        def work(cancel: threading.Event, report: Callable[[object], None]) -> list[LevelFigures]:
            return measure_installed(inventory, [target], self.results, threads=threads, cancel=cancel,
                                     progress=lambda label, stage, f: report((label, stage, f)))

        self.progress.emit(f"Waiting for the model to be free to measure {target.level}…", done / self._total)
        self._task = self.engine.queue_work(work, self._on_done, lambda p: self._on_progress(target, done, p))

    def _on_progress(self, target: InstalledModel, done: int, value: object) -> None:
        label, stage, fraction = value  # type: ignore[misc]
        count = f" ({done + 1} of {self._total})" if self._total > 1 else ""
        if stage == "reference":
            text = f"Measuring {label.rsplit(' · ', 1)[-1]} as the reference for quality{count}"
        else:
            text = f"Measuring {target.level}: {STAGES.get(stage, stage)}{count}"
        self.progress.emit(text, (done + fraction) / self._total)

    def _on_done(self, future: Future[list[LevelFigures]]) -> None:
        self._task = None
        error = None if future.cancelled() else future.exception()
        if self._cancelled or future.cancelled() or isinstance(error, MeasurementCancelled):
            self._finish(CANCELLED)
        elif isinstance(error, EngineError):
            log.warning("level measurement failed: %s (%s)", error.message, error.detail)
            self._finish(error.message)
        elif error is not None:
            log.error("level measurement failed", exc_info=error)
            self._finish(UNEXPECTED)
        else:
            self.measured.emit()
            self._next()

    def _finish(self, sentence: str) -> None:
        self._queue.clear()
        self.ended.emit(sentence)
        self.busyChanged.emit(False)
