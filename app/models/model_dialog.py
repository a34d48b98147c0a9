"""The model manager window: every level the catalog offers plus imported models, with what is on
disk, downloads (progress, speed, ETA, cancel; a paused or interrupted one resumes from its bytes on
disk, even after a restart), verify, delete, "Import GGUF…" and the models folder. All work runs on
the download thread; this window only shows it."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.background.download_worker import DownloadJob, JobProgress, JobResult
from app.models.download_panel import describe
from app.models.import_choice import ask_in_place
from app.models.level_words import level_note
from app.models.model_switcher import ModelSwitcher, levels_for
from app.models.model_table import ModelTable
from app.models.welcome_view import choose_gguf_file
from app.ui import theme
from app.ui.windows import set_up_window
from engine.catalog import CatalogEntry
from engine.models import DiskUsage, InstalledModel
from engine.part_files import free_bytes
from engine.progress import human
from engine.types import EngineError

log = logging.getLogger(__name__)

KEPT_ORIGINAL = "Kept to make other MLX levels without downloading again"


class ModelDialog(QDialog):
    """Non-modal window over the switcher's download thread and model manager."""

    def __init__(self, switcher: ModelSwitcher, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "Models", "ModelDialog", (900, 520), panel=True)
        self.switcher = switcher
        self.downloads = switcher.downloads
        self._progress: dict[str, JobProgress] = {}  # row key → last progress of its running job
        self._jobs: dict[str, DownloadJob] = {}  # row key → queued or running job started here
        self._usage: dict[str, DiskUsage] = {}  # folder id → its bytes on disk, as last read
        self._shown: set[str] = set()  # folders a row stands for

        self.folder_label = QLabel(self)
        self.folder_label.setObjectName("Muted")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        open_button = QPushButton("Open models folder", self)
        open_button.clicked.connect(self._open_folder)
        self.import_button = QPushButton("Import GGUF…", self)
        self.import_button.clicked.connect(self._choose_import)
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.import_button)
        top.addWidget(open_button)

        self.table = ModelTable(self)

        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setTextFormat(Qt.TextFormat.RichText)
        self.message.hide()
        close = QPushButton("Close", self)
        close.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.message, 1)
        bottom.addStretch(0)
        bottom.addWidget(close, 0, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignRight)

        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        lay.addLayout(bottom)

        self.downloads.progress.connect(self._on_progress)
        self.downloads.jobFinished.connect(self._on_finished)
        switcher.switched.connect(self._on_switched)
        switcher.model.changed.connect(self._on_model_state)
        self.refresh()

    # ------------------------------------------------------------------ rows
    def refresh(self) -> None:
        """Rebuild every row from what is on disk and what is running. Every folder under `models/` is
        one row with its bytes on disk, so the rows add up to the total above them."""
        manager = self.switcher.manager
        usage = {u.id: u for u in manager.disk_usage()}
        used = sum(u.bytes for u in usage.values())
        try:
            free = human(free_bytes(manager.root))
        except OSError:
            free = "unknown"
        self.folder_label.setText(f"Models folder: {manager.root} — {human(used)} used, {free} free")
        self.folder_label.setToolTip(f"{used:,} bytes used in the models folder")
        self.table.clear()
        self._usage, self._shown = usage, set()
        current = self.switcher.in_use()
        entries = levels_for(manager, self.switcher.settings.current)
        if entries:
            self.table.heading(entries[0].label.split(" · ")[0])
        for entry in entries:
            self._add_catalog_row(entry, manager.find(entry.model, entry.level), current)
        for source_id in dict.fromkeys(e.source_id for e in entries if e.source_id):
            if source_id in usage:
                self._add_disk_row(usage[source_id], "Original weights")
        imported = [m for m in manager.installed() if m.kind == "imported" and m.id not in self._shown]
        if imported:
            self.table.heading("Imported models")
        for model in imported:
            self._add_installed_row(model.id, model.label, model, current)
        others = [u for u in usage.values() if u.id not in self._shown]
        if others:
            self.table.heading("Other files in the models folder")
        for u in others:
            self._add_disk_row(u, u.label)

    def _add_catalog_row(self, entry: CatalogEntry, installed: InstalledModel | None,
                         current: InstalledModel | None) -> None:
        name = entry.label.split(" · ")[0]
        if installed is not None:
            self._add_installed_row(entry.id, name, installed, current, entry)
            return
        partial = self._usage.get(entry.id)
        source = self._usage.get(entry.source_id or "")
        size = human(entry.size_mb * 1_000_000)
        if self._active(entry.id) is not None:
            status = "Queued" if entry.id not in self._progress else ""
            buttons = [("Cancel", self._cancel_job)]
        elif partial is not None:
            status = f"Paused — {human(partial.bytes)} of {size} kept"
            buttons = [("Resume", self.download), ("Delete", self._delete)]
        elif source is not None and source.state == "partial":
            status = f"Paused — {human(source.bytes)} of the original kept"
            buttons = [("Resume", self.download)]
        elif source is not None:
            status = "Not converted yet"
            buttons = [("Convert", self.download)]
        else:
            status = "Not downloaded"
            buttons = [("Download", self.download)]
        how = (f"Made here from the original weights; takes about {size}." if entry.needs_conversion
               else f"A {size} download.")
        self._row(entry.id, entry.level, partial, status, buttons,
                  f"{level_note(entry)}\n{how} Needs about {human(entry.memory_mb * 1_000_000)} of memory.")

    def _add_installed_row(self, key: str, name: str, model: InstalledModel, current: InstalledModel | None,
                           entry: CatalogEntry | None = None) -> None:
        in_use = current is not None and current.id == model.id
        status = "● In use" if in_use else "Installed"
        if self._active(key) is not None:
            status = "Checking…"
        buttons = [] if in_use else [("Use", self._use)]
        buttons += [("Verify", self._verify)] + ([] if in_use else [("Delete", self._delete)])
        level = model.level or "—"
        tip = f"{model.path}"
        if entry is not None:
            tip = f"{level_note(entry)}\n{tip}"
        outside = model.path.is_absolute() and not model.path.is_relative_to(model.folder)
        if outside:
            tip += f"\nUsed where it is ({human(model.size_bytes)}): it is not in the models folder."
        self._row(key, level if entry is not None else f"{name} · {level}", self._usage.get(model.id), status,
                  buttons, tip)

    def _add_disk_row(self, usage: DiskUsage, name: str) -> None:
        """A folder no level row stands for: the kept MLX original, another engine's model, a download
        of a level no longer offered. Each says what it is for, and can be deleted."""
        if usage.state == "source":
            status = KEPT_ORIGINAL
        elif usage.state == "partial":
            status = "Unfinished download: resumes when this model is downloaded again"
        else:
            status = f"Installed for the {usage.engine} engine"
        self._row(usage.id, name, usage, status, [("Delete", self._delete)], f"{usage.label}\n{usage.id}")

    def _row(self, key: str, level: str, usage: DiskUsage | None, status: str,
             buttons: list[tuple[str, Callable[[str], None]]], tooltip: str) -> None:
        if usage is not None:
            self._shown.add(usage.id)
        self.table.add_row(key, level, usage.bytes if usage is not None else None, status, buttons, tooltip)
        if key in self._progress:
            self.table.show_progress(key, self._progress[key])

    def status_of(self, key: str) -> str:
        """The status a row shows (the progress line while it downloads)."""
        return self.table.status_of(key)

    def button(self, key: str, text: str) -> QPushButton | None:
        return self.table.button(key, text)

    def _active(self, key: str) -> DownloadJob | None:
        """The queued or running job of row `key`, whoever started it (this window or Settings)."""
        return next((j for j in self.downloads.active_jobs() if self._row_key(j) == key), None)

    # --------------------------------------------------------------- actions
    def download(self, entry_id: str) -> None:
        entry = self.switcher.manager.catalog.by_id(entry_id)
        self._jobs[entry_id] = self.downloads.download(entry.model, entry.level)
        self.say("")
        self.refresh()

    def _cancel_job(self, key: str) -> None:
        job = self._active(key)
        if job is not None:
            self.downloads.cancel(job)

    def _use(self, key: str) -> None:
        model = next((m for m in self.switcher.manager.installed() if m.id == key), None)
        if model is not None:
            self.switcher.use(model)
            self.say(f"Switched to {html.escape(model.label)}. The next answer comes from it.")

    def _verify(self, key: str) -> None:
        self._jobs[key] = self.downloads.verify(key)
        self.say("")
        self.refresh()

    def _delete(self, key: str) -> None:
        label = self.table.text(key, "level") or key
        later = ("The MLX levels already made keep working; making another one downloads the original again."
                 if key in self._usage and self._usage[key].state == "source"
                 else "A catalog level can be downloaded again later.")
        answer = QMessageBox.question(self, "Delete model", f"Delete {label} ({self.table.text(key, 'size')}) from "
                                      f"this computer? {later}")
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(key)

    def delete(self, key: str) -> None:
        """Remove an installed model or a paused download (never the one in use)."""
        current = self.switcher.in_use()
        if current is not None and current.id == key:
            self.say("This model is in use. Switch to another level first.", error=True)
            return
        try:
            freed = self.switcher.manager.delete(key)
        except (EngineError, OSError) as e:
            log.warning("delete %s failed: %r", key, e)
            self.say(getattr(e, "message", None) or f"It could not be deleted ({e}).", error=True)
            return
        self.say(f"Deleted. {human(freed)} freed.")
        self.refresh()

    @Slot()
    def _choose_import(self) -> None:
        path = choose_gguf_file(self, "Import a GGUF model file")
        if path is not None:
            self.ask_and_import(path)

    def ask_and_import(self, path: Path) -> None:
        """Ask whether to copy `path` or use it where it is, then import it (nothing if cancelled)."""
        in_place = ask_in_place(path, self)
        if in_place is not None:
            self.import_file(path, in_place)

    def import_file(self, path: Path, in_place: bool = False) -> None:
        """Validate `path` and copy it into the models folder, or record it where it is (on the
        download thread)."""
        key = f"import:{path}"
        self._jobs[key] = self.downloads.import_file(path, in_place)
        self.say(f"Checking {html.escape(path.name)}…")

    @Slot()
    def _open_folder(self) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.switcher.manager.root)))

    def say(self, text: str, error: bool = False) -> None:
        """Show one line under the table (a result or a refusal with its reason)."""
        if error:
            text = f"<span style='color:{theme.current().error}'>{html.escape(text)}</span>"
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # --------------------------------------------------------------- signals
    def _row_key(self, job: DownloadJob) -> str:
        return f"import:{job.key}" if job.kind == "import" else job.key

    @Slot(object)
    def _on_progress(self, p: JobProgress) -> None:
        key = self._row_key(p.job)
        self._progress[key] = p
        if self.table.has_row(key):
            self.table.show_progress(key, p)
            if self.table.button(key, "Cancel") is None:
                self.refresh()
        elif p.job.kind == "import":
            self.message.setText(f"Importing {html.escape(Path(p.job.key).name)}: {describe(p.progress)}")

    @Slot(object)
    def _on_finished(self, result: JobResult) -> None:
        key = self._row_key(result.job)
        last = self._progress.pop(key, None)
        started_here = self._jobs.pop(key, None) is not None
        if started_here or result.status != "done" or result.job.kind != "download":
            self._report(result, converting=last is not None and last.progress.phase == "converting")
        self.refresh()

    def _report(self, result: JobResult, converting: bool = False) -> None:
        job = result.job
        if result.status == "cancelled":
            self.say("Download paused. What was downloaded is kept; Resume continues from there."
                     if job.kind == "download" and not converting else result.message)
        elif result.status == "failed":
            what = Path(job.key).name if job.kind == "import" else job.key
            self.say(f"{what}: {result.message}" if job.kind == "import" else result.message, error=True)
        elif job.kind == "verify":
            self.say("All files match what was downloaded." if result.verified else result.message,
                     error=not result.verified)
        elif job.kind == "import" and result.model is not None:
            self.say(f"Imported {html.escape(result.model.label)} ({html.escape(result.model.level or 'GGUF')}). "
                     "Press Use to chat with it.")
        elif result.model is not None and self.switcher.in_use() is None:
            self.switcher.use(result.model)  # nothing was loaded: the new model is what the user wants
            self.say(f"{html.escape(result.model.label)} is ready and in use.")
        elif result.model is not None:
            self.say(f"{html.escape(result.model.label)} is ready. Press Use to switch to it.")

    @Slot(object)
    def _on_switched(self, _model: object) -> None:
        self.refresh()

    @Slot(object)
    def _on_model_state(self, _status: object) -> None:
        self.refresh()
