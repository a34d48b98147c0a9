"""File menu: export the open chat or every chat to Markdown or JSON, and import a JSON export.

`write_export` / `read_import` do the work and raise `TransferError` with a plain sentence;
`TransferActions` adds the file dialogs and tells the user what happened.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from app.core import transfer
from app.core.atomic_write import write_text_atomically
from app.core.import_source import read_import_file
from app.core.store import Store
from app.core.store_types import ImportSummary, StoreError

log = logging.getLogger(__name__)

MARKDOWN_FILTER = "Markdown (*.md)"
JSON_FILTER = "JSON — can be imported into TinyChat again (*.json)"
IMPORT_FILTER = "TinyChat JSON export (*.json);;All files (*)"
MAX_TITLES_SHOWN = 8


class TransferError(Exception):
    """An export or import that did not happen; `message` says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def write_export(store: Store, path: Path, ids: list[str] | None = None) -> str:
    """Write the conversations `ids` (None: all) to `path`, as JSON when it ends in .json, else Markdown.
    Atomic: the file appears complete or not at all. Returns a sentence saying what was written."""
    path = Path(path)
    try:
        count = len(ids) if ids is not None else len(store.list_conversations())
        if path.suffix.lower() == ".json":
            text = json.dumps(transfer.export_json(store, ids), ensure_ascii=False, indent=1)
        else:
            text = transfer.export_markdown(store, ids)
    except StoreError as e:
        raise TransferError(e.message) from e
    try:
        write_text_atomically(path, text)
    except OSError as e:
        log.warning("export to %s failed: %r", path, e)
        raise TransferError(f"{path.name} could not be written ({e.strerror or e}). Choose another folder, or "
                            "free some disk space, and try again.") from e
    return f"Exported {_plural(count, 'conversation')} to {path}."


def read_import(store: Store, path: Path) -> ImportSummary:
    """Add the conversations of a TinyChat JSON export; nothing is written if the file is refused."""
    path = Path(path)
    try:
        return transfer.import_json(store, read_import_file(path, transfer.MAX_IMPORT_BYTES))
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


class TransferActions:
    """The File-menu commands. `current` gives the open conversation id, `notify` shows a sentence,
    `imported` is called after conversations were added (to refresh the sidebar)."""

    def __init__(self, store: Store, parent: QWidget, current: Callable[[], str | None],
                 notify: Callable[[str], None], imported: Callable[[], None]) -> None:
        self.store, self.parent = store, parent
        self.current, self.notify, self.imported = current, notify, imported
        self.folder = Path.home()

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
        path, chosen = QFileDialog.getSaveFileName(self.parent, "Export", str(self.folder / f"{name}.md"),
                                                   f"{MARKDOWN_FILTER};;{JSON_FILTER}")
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in (".md", ".json"):
            target = target.with_name(target.name + (".json" if chosen == JSON_FILTER else ".md"))
        self.folder = target.parent
        try:
            self.notify(write_export(self.store, target, ids))
        except TransferError as e:
            QMessageBox.warning(self.parent, "Export", e.message)

    def import_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.parent, "Import conversations", str(self.folder),
                                              IMPORT_FILTER)
        if not path:
            return
        self.folder = Path(path).parent
        try:
            summary = read_import(self.store, Path(path))
        except TransferError as e:
            QMessageBox.warning(self.parent, "Import", e.message)
            return
        self.imported()
        QMessageBox.information(self.parent, "Import", describe_import(summary))
