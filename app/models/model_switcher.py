"""Making a model level the one in use: the quantization switch behind Settings, the welcome view and
the model manager.

`ModelSwitcher.choose(model, level)` is the one call: an installed level is saved in the settings and
loaded on the engine thread at once (the open chat stays; the next answer is produced — and stored —
with the new level); a level that is not installed is downloaded on the download thread first, with
progress and cancel, and then used. Nothing here blocks the GUI thread.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.background.download_worker import DownloadJob, DownloadThread, JobProgress, JobResult
from app.chat.model_state import ModelState
from app.chat.settings_service import SettingsService
from app.core.model_choice import resolve_model
from app.core.settings import DEFAULT_MODEL_ID, Settings
from engine.catalog import CatalogEntry
from engine.models import InstalledModel, ModelManager
from engine.select import choose_engine
from engine.types import ModelInfo

log = logging.getLogger(__name__)


def levels_for(manager: ModelManager, settings: Settings) -> tuple[CatalogEntry, ...]:
    """The catalog levels of the settings' model that the chosen engine runs, smallest first. While a
    model of the user's own is in use, those of the catalog's model: they stay available to switch to."""
    engine = choose_engine(settings.engine).name
    for model in (settings.model_id, DEFAULT_MODEL_ID, *manager.catalog.models()):
        levels = manager.catalog.levels(model, engine)
        if levels:
            return levels
    return ()


class ModelSwitcher(QObject):
    """Owns "which model is in use": it records the choice in the settings and loads it."""

    progress = Signal(object)  # JobProgress of the pending download
    pendingChanged = Signal()  # a download for a switch started or ended
    failed = Signal(str)  # a sentence for the user: the download or import did not work
    cancelled = Signal(str)
    switched = Signal(object)  # InstalledModel: saved in the settings and handed to the engine to load
    notice = Signal(str)  # a sentence for the user (the choice could not be saved)

    def __init__(self, settings: SettingsService, model: ModelState, downloads: DownloadThread) -> None:
        super().__init__()
        self.settings = settings
        self.model = model
        self.downloads = downloads
        self.pending: DownloadJob | None = None  # the download or import that will be used when done
        self.last_error = ""
        self._loading_path: Path | None = None
        downloads.progress.connect(self._on_progress)
        downloads.jobFinished.connect(self._on_finished)
        model.engine.loadStarted.connect(self._on_load_started)

    @property
    def manager(self) -> ModelManager:
        return self.downloads.manager

    def current(self) -> InstalledModel | None:
        """The installed model the settings point at (what is loaded or loading)."""
        return resolve_model(self.manager, self.settings.current)

    def in_use(self) -> InstalledModel | None:
        """The installed model the engine has loaded or is loading; None while no model is loaded."""
        state = self.model.status.state
        if state == "ready" and self.model.loaded is not None:
            path: Path | None = self.model.loaded.model.path
        elif state == "loading":
            path = self._loading_path
        else:
            return None
        return next((m for m in self.manager.installed() if m.path == path), None)

    def choose(self, model: str, level: str) -> DownloadJob | None:
        """Use `model` at `level`: at once when installed, else after downloading it. Returns the
        download job when one was started (watch `progress`, `switched`, `failed`, `cancelled`)."""
        installed = self.manager.find(model, level)
        if installed is not None:
            self._cancel_pending()
            self.use(installed)
            return None
        return self._start(self.downloads.download(model, level))

    def import_file(self, path: Path, in_place: bool = False) -> DownloadJob:
        """Validate a user's GGUF file, copy it (or, `in_place`, record it where it is), then use it."""
        return self._start(self.downloads.import_file(path, in_place))

    def cancel(self) -> None:
        """Stop the pending download; its bytes stay on disk and the next attempt resumes from them."""
        if self.pending is not None:
            self.downloads.cancel(self.pending)

    def use(self, model: InstalledModel) -> None:
        """Save `model` as the one in use and load it on the engine thread (queued after any answer in
        progress, so that answer finishes with the model that started it)."""
        error = self.settings.apply(replace(self.settings.current, model_id=model.model, quant=model.level))
        if error:  # the switch still happens, it just will not be remembered
            self.notice.emit(error)
        log.info("switching to %s", model.label)
        self.model.load(model.model_info())
        self.switched.emit(model)

    def _start(self, job: DownloadJob) -> DownloadJob:
        if self.pending is not None and self.pending != job:
            self._cancel_pending()
        self.pending = job
        self.last_error = ""
        self.pendingChanged.emit()
        return job

    def _cancel_pending(self) -> None:
        if self.pending is not None:
            self.downloads.cancel(self.pending)
            self.pending = None
            self.pendingChanged.emit()

    @Slot(object)
    def _on_load_started(self, model: ModelInfo) -> None:
        self._loading_path = model.path

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        if p.job == self.pending:
            self.progress.emit(p)

    @Slot(object)
    def _on_finished(self, result: JobResult) -> None:
        if result.job != self.pending:
            return
        self.pending = None
        self.pendingChanged.emit()
        if result.status == "done" and result.model is not None:
            self.use(result.model)
        elif result.status == "cancelled":
            self.cancelled.emit(result.message)
        else:
            self.last_error = result.message or "The model could not be installed."
            self.failed.emit(self.last_error)
