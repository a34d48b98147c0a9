"""Ctrl+F: search every conversation (the store's FTS5 index), results with the matches highlighted;
Enter or a click asks to open the conversation on the branch holding that message, with it in view."""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core import timestamps
from app.core.store import Store
from app.core.store_errors import read_or_tell
from app.core.store_types import MARK_END, MARK_START, SearchHit
from app.ui import theme
from app.ui.windows import set_up_window

DEBOUNCE_MS = 120
ROLE_HIT = Qt.ItemDataRole.UserRole
ROLE_WORDS = {"user": "You", "assistant": "TinyLlama", "system": "System"}


def hit_html(hit: SearchHit, highlight: str) -> str:
    """A result as rich text: conversation title, who said it and when, then the snippet with every
    match on a coloured background."""
    snippet = html.escape(hit.snippet).replace(MARK_START, f"<span style='background-color:{highlight};'>")
    snippet = snippet.replace(MARK_END, "</span>")
    moment = timestamps.local_datetime(hit.created_at)
    when = moment.strftime("%d %b %Y") if moment else "unknown date"
    who = ROLE_WORDS.get(hit.role, hit.role)
    return (f"<b>{html.escape(hit.conversation_title or 'Untitled')}</b> "
            f"<span style='color:{theme.current().muted}'>· {who} · {when}</span><br>{snippet}")


class SearchDialog(QDialog):
    """Type to search; ↑/↓ choose, Enter opens. `openRequested(conversation_id, message_id)`."""

    openRequested = Signal(str, str)

    def __init__(self, store: Store, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        set_up_window(self, "Search conversations", "SearchDialog", (640, 460), panel=True)
        self.store = store
        self.query = QLineEdit(self)
        self.query.setPlaceholderText("Search all conversations…")
        self.query.setAccessibleName("Search conversations")
        self.query.setClearButtonEnabled(True)
        self.query.installEventFilter(self)
        self.results = QListWidget(self)
        self.results.setObjectName("SearchResults")
        self.results.setAccessibleName("Search results")
        self.results.setWordWrap(True)
        self.results.setSpacing(2)
        self.results.itemActivated.connect(self._open)
        self.results.itemClicked.connect(self._open)
        self.summary = QLabel(self)
        self.summary.setObjectName("Muted")
        lay = QVBoxLayout(self)
        lay.addWidget(self.query)
        lay.addWidget(self.summary)
        lay.addWidget(self.results, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.run_search)
        self.query.textChanged.connect(self._timer.start)
        self.query.returnPressed.connect(self._open_current)
        self.summary.setText("Finds words in every message, in all your conversations.")

    @Slot()
    def run_search(self) -> None:
        """Search for the query now (typing does this after a short pause)."""
        text = self.query.text().strip()
        self.results.clear()
        if not text:
            self.summary.setText("Finds words in every message, in all your conversations.")
            return
        hits = read_or_tell(lambda: self.store.search(text), self.summary.setText)
        if hits is None:
            return
        highlight = theme.current().user_bubble if theme.current().name == "dark" else "#ffe58a"
        for hit in hits:
            item = QListWidgetItem(self.results)
            item.setData(ROLE_HIT, hit)
            label = QLabel(hit_html(hit, highlight))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setContentsMargins(8, 6, 8, 6)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
            item.setSizeHint(label.sizeHint())
            self.results.setItemWidget(item, label)
        if hits:
            self.results.setCurrentRow(0)
            self.summary.setText(f"{len(hits)} message{'s' if len(hits) != 1 else ''} found"
                                 + (" (showing the best 50)" if len(hits) >= 50 else "")
                                 + " — Enter opens the selected one.")
        else:
            self.summary.setText(f"No message contains “{text}”.")

    def hits(self) -> list[SearchHit]:
        return [self.results.item(i).data(ROLE_HIT) for i in range(self.results.count())]

    @Slot()
    def _open_current(self) -> None:
        if self._timer.isActive():  # Enter right after typing: search first
            self._timer.stop()
            self.run_search()
        item = self.results.currentItem()
        if item is not None:
            self._open(item)

    @Slot(QListWidgetItem)
    def _open(self, item: QListWidgetItem) -> None:
        hit: SearchHit = item.data(ROLE_HIT)
        self.openRequested.emit(hit.conversation_id, hit.message_id)
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """↑/↓ in the query box move through the results, so the hands stay on the keyboard."""
        if watched is self.query and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(Qt.Key(event.key()))
            if step and self.results.count():
                row = min(max(self.results.currentRow() + step, 0), self.results.count() - 1)
                self.results.setCurrentRow(row)
                return True
        return super().eventFilter(watched, event)

