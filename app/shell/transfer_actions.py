"""File menu: export the open chat or every chat to Markdown or JSON, and import a JSON export.

`write_export` / `read_import` do the work and raise `TransferError` with a plain sentence;
`TransferActions` adds the file dialogs, runs the work on a background thread with its own connection
to the database (so the window keeps painting through a long backup), shows its progress with a Cancel
button, and tells the user what happened.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressDialog, QWidget

from app.background.tasks import Task, TaskThread
from app.core import transfer
from app.core.store import Store
from app.core.store_types import ImportSummary, StoreError

log = logging.getLogger(__name__)

MARKDOWN_FILTER = "Markdown (*.md)"
JSON_FILTER = "JSON — can be imported into TinyChat again (*.json)"
IMPORT_FILTER = "TinyChat JSON export (*.json);;All files (*)"
MAX_TITLES_SHOWN = 8
PROGRESS_AFTER_MS = 400  # a quick job finishes before its progress window would flash up


class TransferError(Exception):
    """An export or import that did not happen; `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def write_export(store: Store, path: Path, ids: list[str] | None = None,
                 progress: transfer.ProgressFn | None = None, cancel: threading.Event | None = None) -> str:
    """Write the conversations `ids` (None: all) to `path`, as JSON when it ends in .json, else Markdown,
    one conversation at a time. Atomic: the file appears complete or not at all. Returns a sentence
    saying what was written."""
    path = Path(path)
    try:
        count = transfer.export_to_file(store, path, path.suffix.lower() != ".json", ids, progress, cancel)
    except StoreError as e:  # Cancelled and a disk without room included: their sentences say it all
        raise TransferError(e.message) from e
    except OSError as e:
        log.warning("export to %s failed: %r", path, e)
        raise TransferError(f"{path.name} could not be written ({e.strerror or e}). Choose another folder, or "
                            "free some disk space, and try again.") from e
    return f"Exported {_plural(count, 'conversation')} to {path}."


def read_import(store: Store, path: Path, progress: transfer.ProgressFn | None = None,
                cancel: threading.Event | None = None) -> ImportSummary:
    """Add the conversations of a TinyChat JSON export; nothing is written if the file is refused."""
    path = Path(path)
    try:
        return transfer.import_file(store, path, progress, cancel)
    except StoreError as e:  # ImportRejected included: its sentence says what is wrong with the file
        log.info("import of %s refused: %s (%s)", path, e.message, e.detail)
        raise TransferError(f"{path.name} was not imported: {e.message}") from e
    except MemoryError as e:
        raise TransferError(f"{path.name} was not imported: there is not enough memory to read it.") from e


def describe_import(summary: ImportSummary) -> str:
    """The summary shown after an import: counts, then the titles added."""
    text = summary.describe()
    titles = list(summary.added_titles[:MAX_TITLES_SHOWN])
    if titles:
        more = len(summary.added_titles) - len(titles)
        text += "\n\n" + "\n".join(f"• {t}" for t in titles) + (f"\n… and {more} more" if more > 0 else "")
    return text


def _file_name(title: str) -> str:
    return re.sub(r"[^\w\- ]+", "", title).strip()[:60] or "conversation"


def _reporter(task: Task[Any]) -> transfer.ProgressFn:
    """Progress handed to the GUI thread at most once per percent, however many conversations there are."""
    shown = [-1]

    def report(fraction: float, count: int) -> None:
        percent = int(fraction * 100)
        if percent != shown[0]:
            shown[0] = percent
            task.report((percent, count))
    return report


def _export_job(db: Path, path: Path, ids: list[str] | None) -> Callable[[Task[str]], str]:
    def job(task: Task[str]) -> str:
        try:  # a connection of this thread's own, which never writes
            store = Store.open_read_only(db)
        except StoreError as e:
            raise TransferError(e.message) from e
        try:
            return write_export(store, path, ids, _reporter(task), task.cancel_event)
        finally:
            store.close()
    return job


def _import_job(db: Path, path: Path) -> Callable[[Task[ImportSummary]], ImportSummary]:
    def job(task: Task[ImportSummary]) -> ImportSummary:
        try:
            store, _ = Store.open(db)
        except StoreError as e:
            raise TransferError(f"{path.name} was not imported: {e.message}") from e
        try:
            return read_import(store, path, _reporter(task), task.cancel_event)
        finally:
            store.close()
    return job


class TransferActions:
    """The File-menu commands. `current` gives the open conversation id, `notify` shows a sentence,
    `imported` is called after conversations were added (to refresh the sidebar)."""

    def __init__(self, store: Store, parent: QWidget, current: Callable[[], str | None],
                 notify: Callable[[str], None], imported: Callable[[], None]) -> None:
        self.store, self.parent = store, parent
        self.current, self.notify, self.imported = current, notify, imported
        self.folder = Path.home()
        self.thread = TaskThread("tinychat-transfer")
        self.running: Task[Any] | None = None
        self.progress: QProgressDialog | None = None
        self._label = ""

    def export_current(self) -> None:
        cid = self.current()
        if cid is None:
            self.notify("Open a conversation first; a new chat has nothing to export yet.")
            return
        try:
            title = self.store.get_conversation(cid).title
        except StoreError as e:
            self.notify(e.message)
            return
        self._export([cid], _file_name(title))

    def export_all(self) -> None:
        self._export(None, "TinyChat conversations")

    def _export(self, ids: list[str] | None, name: str) -> None:
        if self._busy():
            return
        path, chosen = QFileDialog.getSaveFileName(self.parent, "Export", str(self.folder / f"{name}.md"),
                                                   f"{MARKDOWN_FILTER};;{JSON_FILTER}")
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in (".md", ".json"):
            target = target.with_name(target.name + (".json" if chosen == JSON_FILTER else ".md"))
        self.folder = target.parent
        self._start("Exporting conversations…", _export_job(self.store.path, target, ids), self._exported)

    def import_file(self) -> None:
        if self._busy():
            return
        path, _ = QFileDialog.getOpenFileName(self.parent, "Import conversations", str(self.folder),
                                              IMPORT_FILTER)
        if not path:
            return
        self.folder = Path(path).parent
        self._start("Importing conversations…", _import_job(self.store.path, Path(path)), self._imported)

    def shutdown(self) -> None:
        """Stop a running job (an import rolls back, an export leaves no file) and end the thread."""
        self.thread.shutdown()

    def _busy(self) -> bool:
        if self.running is None:
            return False
        self.notify("A backup is still running; wait for it to finish or cancel it first.")
        return True

    def _start(self, label: str, job: Callable[[Task[Any]], Any], done: Callable[[Future[Any]], None]) -> None:
        dialog = QProgressDialog(label, "Cancel", 0, 100, self.parent)
        dialog.setWindowTitle("TinyChat")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)  # the window paints, but is not changed meanwhile
        dialog.setMinimumDuration(PROGRESS_AFTER_MS)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        dialog.setValue(0)
        self.progress, self._label = dialog, label
        task = self.thread.submit(job, lambda future: self._finish(future, done), self._progressed)
        dialog.canceled.connect(task.cancel_event.set)
        self.running = task

    def _progressed(self, value: tuple[int, int]) -> None:
        percent, count = value
        if self.progress is not None:
            self.progress.setValue(percent)
            self.progress.setLabelText(f"{self._label} ({_plural(count, 'conversation')} so far)")

    def _finish(self, future: Future[Any], done: Callable[[Future[Any]], None]) -> None:
        self.running = None
        if self.progress is not None:
            self.progress.close()
            self.progress.deleteLater()
            self.progress = None
        if not future.cancelled():
            done(future)

    def _exported(self, future: Future[str]) -> None:
        error = future.exception()
        if error is None:
            self.notify(future.result())
        elif isinstance(error, TransferError):
            QMessageBox.warning(self.parent, "Export", error.message)
        else:
            log.error("export failed", exc_info=error)
            QMessageBox.warning(self.parent, "Export", "The export failed unexpectedly; the log has the details.")

    def _imported(self, future: Future[ImportSummary]) -> None:
        error = future.exception()
        if error is None:
            self.imported()
            QMessageBox.information(self.parent, "Import", describe_import(future.result()))
        elif isinstance(error, TransferError):
            QMessageBox.warning(self.parent, "Import", error.message)
        else:
            log.error("import failed", exc_info=error)
            QMessageBox.warning(self.parent, "Import", "The import failed unexpectedly; the log has the details.")
