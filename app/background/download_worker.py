"""Model downloads, imports and verification on their own thread.

`DownloadWorker` drives a `ModelManager` (which is not thread-safe); its jobs run only as tasks of one
`TaskThread`, one at a time in the order queued. `DownloadThread` is the GUI-side handle: it queues jobs
and stops one by setting its task's `threading.Event` directly: the transfer checks that Event for every
chunk (≤ 1 MiB), so a cancel is felt at once and the partial file stays on disk for the next attempt to
resume. Progress and results are emitted on the GUI thread as small frozen dataclasses.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, Signal

from app.background.tasks import Task, TaskThread
from engine import network_log
from engine.catalog import CatalogEntry
from engine.download import Progress
from engine.models import InstalledModel, ModelManager
from engine.types import DownloadCancelled, EngineError

log = logging.getLogger(__name__)

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


class DownloadWorker:
    """The `ModelManager` that does the work, created on first use. Every method runs on the download thread."""

    def __init__(self, manager_factory: Callable[[], ModelManager]) -> None:
        self._factory = manager_factory
        self._manager: ModelManager | None = None

    def _ensure_manager(self) -> ModelManager:
        if self._manager is None:
            self._manager = self._factory()
        return self._manager

    def download_size(self, entry: CatalogEntry) -> int | None:
        """Bytes getting `entry` would download now, from the Hub's metadata; None when it cannot be asked."""
        try:
            return self._ensure_manager().download_size(entry)
        except (EngineError, OSError) as e:
            log.info("download size of %s unknown: %r", entry.id, e)
            return None

    def run(self, job: DownloadJob, cancel: threading.Event, report: Callable[[Progress], None]) -> JobResult:
        """Do `job`. Raises DownloadCancelled when `cancel` is set, EngineError or OSError when it fails."""
        manager = self._ensure_manager()
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


class DownloadThread(QObject):
    """GUI-side owner of the download thread. Call every method on the GUI thread; every signal is
    emitted on it.

    `manager` is a separate ModelManager over the same folder for cheap reads on the GUI thread
    (installed models, disk usage); everything that writes goes through the worker.
    """

    progress = Signal(object)  # JobProgress
    jobFinished = Signal(object)  # JobResult, once the job is no longer active
    sizeKnown = Signal(str, object)  # catalog entry id, bytes it would download now (None: unknown)

    def __init__(self, manager_factory: Callable[[], ModelManager]) -> None:
        super().__init__()
        self.manager = manager_factory()
        self.tasks = TaskThread("downloads", self)
        self._worker = DownloadWorker(manager_factory)
        self._jobs: dict[DownloadJob, Task[JobResult]] = {}
        # Asked on the GUI thread before a download while airplane mode is on: True lets that one job
        # go online. Unset (or False), the job runs and airplane mode refuses it with a sentence.
        self.confirm_network: Callable[[CatalogEntry], bool] | None = None

    def download(self, model: str, level: str) -> DownloadJob:
        """Queue getting a catalog level (returns at once if it is installed); see `jobFinished`."""
        entry = self.manager.catalog.get(model, level)
        job = DownloadJob("download", entry.id, entry.model, entry.level)
        online_once = (job not in self._jobs and network_log.airplane() and self.manager.find(model, level) is None
                       and self.confirm_network is not None and self.confirm_network(entry))
        return self._submit(job, online_once)

    def ask_download_size(self, entry: CatalogEntry) -> None:
        """Ask the Hub (on the download thread, behind any running job) how much getting `entry` would
        download; `sizeKnown` answers. Not asked in airplane mode: the catalog's figure stands."""
        if network_log.airplane():
            return
        self.tasks.submit(lambda _task: self._worker.download_size(entry),
                          lambda future: self.sizeKnown.emit(entry.id, None if future.cancelled() or
                                                             future.exception() else future.result()))

    def import_file(self, path: Path, in_place: bool = False) -> DownloadJob:
        """Queue validating a user's GGUF file and copying it into the models folder (or, `in_place`,
        recording it where it is)."""
        return self._submit(DownloadJob("import", str(path), path=Path(path), in_place=in_place))

    def verify(self, installed_id: str) -> DownloadJob:
        """Queue re-hashing an installed model's files."""
        return self._submit(DownloadJob("verify", installed_id))

    def _submit(self, job: DownloadJob, online_once: bool = False) -> DownloadJob:
        if job in self._jobs:  # already queued or running: one copy is enough
            return job

        def run(task: Task[JobResult]) -> JobResult:
            with network_log.allow_once() if online_once else contextlib.nullcontext():
                return self._worker.run(job, task.cancel_event, lambda p: task.report(JobProgress(job, p)))

        self._jobs[job] = self.tasks.submit(run, partial(self._on_done, job), self.progress.emit)
        return job

    def busy(self, job: DownloadJob) -> bool:
        """True while `job` is queued or running."""
        return job in self._jobs

    def active_jobs(self) -> tuple[DownloadJob, ...]:
        return tuple(self._jobs)

    def cancel(self, job: DownloadJob) -> None:
        """Stop `job` now (the transfer checks the Event per chunk); its partial file is kept."""
        task = self._jobs.get(job)
        if task is not None:
            task.cancel()

    def shutdown(self) -> bool:
        """Cancel every job and join the thread. True if the thread ended."""
        return self.tasks.shutdown()

    def _on_done(self, job: DownloadJob, future: Future[JobResult]) -> None:
        self._jobs.pop(job, None)
        self.jobFinished.emit(_outcome(job, future))


def _outcome(job: DownloadJob, future: Future[JobResult]) -> JobResult:
    """How `job` ended, with a sentence for the user when it did not succeed; details go to the log.
    A failure is read with future.exception(), not re-raised, so no frame of ours joins its traceback."""
    if future.cancelled():
        return JobResult(job, "cancelled", "Cancelled before it started.")
    e = future.exception()
    if e is None:
        return future.result()
    if isinstance(e, DownloadCancelled):
        log.info("%s %s cancelled", job.kind, job.key)
        return JobResult(job, "cancelled", e.message)
    if isinstance(e, EngineError):  # DownloadError, ModelFileError, CatalogError: all carry a sentence
        log.warning("%s %s failed: %s (%s)", job.kind, job.key, e.message, e.detail)
        return JobResult(job, "failed", e.message)
    if isinstance(e, OSError):
        log.error("%s %s failed", job.kind, job.key, exc_info=e)
        return JobResult(job, "failed", f"TinyChat could not read or write a model file ({e.strerror or e}). "
                                        "Check the disk and try again.")
    log.error("unexpected error in %s %s", job.kind, job.key, exc_info=e)  # the user gets a sentence
    return JobResult(job, "failed", "Something unexpected went wrong. Details are in the log file.")
