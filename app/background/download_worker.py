"""Model downloads, imports and verification on their own thread.

`DownloadWorker` is a QObject moved to a QThread; it alone drives its `ModelManager` (which is not
thread-safe). The GUI queues jobs through a signal and stops one by setting its `threading.Event`
directly: the transfer checks that Event for every chunk (≤ 1 MiB), so a cancel is felt at once and
the partial file stays on disk for the next attempt to resume. Progress and results come back as
queued signals carrying small frozen dataclasses, to @Slot methods of GUI-thread objects only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.download import Progress
from engine.models import InstalledModel, ModelManager
from engine.types import DownloadCancelled, EngineError

log = logging.getLogger(__name__)
SHUTDOWN_WAIT_MS = 10_000

JobKind = Literal["download", "import", "verify"]
JobStatus = Literal["done", "cancelled", "failed"]


@dataclass(frozen=True)
class DownloadJob:
    """One piece of model work. `key` names it for the GUI: the catalog entry id for a download,
    the file path for an import, the installed model id for a verification."""

    kind: JobKind
    key: str
    model: str = ""
    level: str = ""
    path: Path | None = None
    in_place: bool = False  # an import that uses the file where it is instead of copying it


@dataclass(frozen=True)
class JobProgress:
    """A progress report of `job` (bytes of the whole job, speed in bytes/s, ETA in seconds)."""

    job: DownloadJob
    progress: Progress


@dataclass(frozen=True)
class JobResult:
    """How a job ended. `message` is a sentence for the user when it failed or was cancelled;
    `model` is the installed model after a download or import; `verified` the answer of a verify."""

    job: DownloadJob
    status: JobStatus
    message: str = ""
    model: InstalledModel | None = None
    verified: bool | None = None


class DownloadWorker(QObject):
    """Lives on the download thread; its slots run there, one job at a time, in the order queued."""

    started = Signal(object)  # DownloadJob
    progress = Signal(object)  # JobProgress
    finished = Signal(object)  # JobResult

    _run_requested = Signal(object, object)  # DownloadJob, threading.Event
    _shutdown_requested = Signal()

    def __init__(self, manager_factory: Callable[[], ModelManager]) -> None:
        super().__init__()
        self._factory = manager_factory
        self._manager: ModelManager | None = None
        self._run_requested.connect(self._run)
        self._shutdown_requested.connect(self._shutdown)

    @Slot(object, object)
    def _run(self, job: DownloadJob, cancel: threading.Event) -> None:
        if cancel.is_set():  # cancelled while it was still waiting in the queue
            self.finished.emit(JobResult(job, "cancelled", "Cancelled before it started."))
            return
        self.started.emit(job)
        try:
            if self._manager is None:
                self._manager = self._factory()
            result = self._do(self._manager, job, cancel)
        except DownloadCancelled as e:
            log.info("%s %s cancelled", job.kind, job.key)
            result = JobResult(job, "cancelled", e.message)
        except EngineError as e:  # DownloadError, ModelFileError, CatalogError: all carry a sentence
            log.warning("%s %s failed: %s (%s)", job.kind, job.key, e.message, e.detail)
            result = JobResult(job, "failed", e.message)
        except OSError as e:
            log.exception("%s %s failed", job.kind, job.key)
            result = JobResult(job, "failed", f"TinyChat could not read or write a model file ({e.strerror or e}). "
                                              "Check the disk and try again.")
        except Exception:  # a bug must not kill the thread: the user gets a sentence, the log the trace
            log.exception("unexpected error in %s %s", job.kind, job.key)
            result = JobResult(job, "failed", "Something unexpected went wrong. Details are in the log file.")
        self.finished.emit(result)

    def _do(self, manager: ModelManager, job: DownloadJob, cancel: threading.Event) -> JobResult:
        def report(p: Progress) -> None:
            self.progress.emit(JobProgress(job, p))

        if job.kind == "download":
            manager.ensure_available(job.model, job.level, report, cancel)
            return JobResult(job, "done", model=manager.find(job.model, job.level))
        if job.kind == "import":
            assert job.path is not None
            return JobResult(job, "done", model=manager.import_gguf(job.path, report, cancel, in_place=job.in_place))
        ok = manager.verify(job.key, cancel)
        message = "" if ok else ("This model's files no longer match what was downloaded. Delete it and "
                                 "download it again.")
        return JobResult(job, "done", message, verified=ok)

    @Slot()
    def _shutdown(self) -> None:
        thread = self.thread()
        if thread is not None:
            thread.quit()


class DownloadThread(QObject):
    """GUI-side owner of the download thread. Every method is called on the GUI thread.

    `manager` is a separate ModelManager over the same folder for cheap reads on the GUI thread
    (installed models, disk usage); everything that writes goes through the worker.
    Connect to `jobFinished` (emitted on the GUI thread once the job is no longer active), not to the
    worker's own `finished`.
    """

    jobFinished = Signal(object)  # JobResult

    def __init__(self, manager_factory: Callable[[], ModelManager]) -> None:
        super().__init__()
        self.manager = manager_factory()
        self.thread = QThread()
        self.thread.setObjectName("downloads")
        self.worker = DownloadWorker(manager_factory)
        self.worker.moveToThread(self.thread)
        self.thread.finished.connect(self.worker.deleteLater)
        self.worker.finished.connect(self._on_finished)
        self._cancels: dict[DownloadJob, threading.Event] = {}
        self._running = False

    def start(self) -> None:
        if not self._running:
            self.thread.start()
            self._running = True

    def download(self, model: str, level: str) -> DownloadJob:
        """Queue getting a catalog level (returns at once if it is installed); see `worker.finished`."""
        entry = self.manager.catalog.get(model, level)
        return self._submit(DownloadJob("download", entry.id, entry.model, entry.level))

    def import_file(self, path: Path, in_place: bool = False) -> DownloadJob:
        """Queue validating a user's GGUF file and copying it into the models folder (or, `in_place`,
        recording it where it is)."""
        return self._submit(DownloadJob("import", str(path), path=Path(path), in_place=in_place))

    def verify(self, installed_id: str) -> DownloadJob:
        """Queue re-hashing an installed model's files."""
        return self._submit(DownloadJob("verify", installed_id))

    def _submit(self, job: DownloadJob) -> DownloadJob:
        self.start()
        if job in self._cancels:  # already queued or running: one copy is enough
            return job
        cancel = threading.Event()
        self._cancels[job] = cancel
        self.worker._run_requested.emit(job, cancel)
        return job

    def busy(self, job: DownloadJob) -> bool:
        """True while `job` is queued or running."""
        return job in self._cancels

    def active_jobs(self) -> tuple[DownloadJob, ...]:
        return tuple(self._cancels)

    def cancel(self, job: DownloadJob) -> None:
        """Stop `job` now (the transfer checks the Event per chunk); its partial file is kept."""
        event = self._cancels.get(job)
        if event is not None:
            event.set()

    @Slot(object)
    def _on_finished(self, result: JobResult) -> None:
        self._cancels.pop(result.job, None)
        self.jobFinished.emit(result)

    def shutdown(self) -> bool:
        """Cancel every job, quit the thread's loop and join it. True if the thread ended."""
        if not self._running:
            return True
        self._running = False
        for event in self._cancels.values():
            event.set()
        self.worker._shutdown_requested.emit()
        ended = self.thread.wait(SHUTDOWN_WAIT_MS)
        if not ended:
            log.error("the download thread did not stop within %d ms", SHUTDOWN_WAIT_MS)
        return ended
