"""Ctrl+F: search every conversation (the store's FTS5 index), results with the matches highlighted, newest
messages first and older ones as the list scrolls; Enter or a click asks to open the conversation on the
branch holding that message, with it in view."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QAbstractItemView, QDialog, QLabel, QLineEdit, QListView, QVBoxLayout, QWidget

from app.chat.search_results import HIT_ROLE, HitDelegate, SearchResults
from app.core.store import Store
from app.core.store_errors import read_or_tell
from app.core.store_types import SearchHit
from app.ui.windows import set_up_window

DEBOUNCE_MS = 120
PAGE = 50
MORE_PX = 200  # this close to the bottom of the list, the next page is fetched
INTRO = "Finds words in every message, in all your conversations."


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
        self.model = SearchResults(self)
        self.results = QListView(self)
        self.results.setObjectName("SearchResults")
        self.results.setAccessibleName("Search results")
        self.results.setModel(self.model)
        self.results.setItemDelegate(HitDelegate(self.results))
        self.results.setUniformItemSizes(True)
        self.results.setSpacing(2)
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.activated.connect(self._open)
        self.results.clicked.connect(self._open)
        self.results.verticalScrollBar().valueChanged.connect(self._on_scrolled)
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
        self.summary.setText(INTRO)
        self._text = ""
        self._more: tuple[int, int] | None = None  # where the next page starts

    @Slot()
    def run_search(self) -> None:
        """Search for the query now (typing does this after a short pause): the best matches among the
        newest messages first, older ones as the list is scrolled down."""
        self._text = self.query.text().strip()
        self._more = None
        self.model.clear()
        if not self._text:
            self.summary.setText(INTRO)
            return
        if self._fetch(None) and self.model.hits:
            self.results.setCurrentIndex(self.model.index(0))

    def fetch_more(self) -> bool:
        """Add the next page of older matches; False when there is none."""
        return self._more is not None and self._fetch(self._more)

    def _fetch(self, after: tuple[int, int] | None) -> bool:
        text = self._text
        page = read_or_tell(lambda: self.store.search_page(text, PAGE, after), self.summary.setText)
        if page is None:
            return False
        self._more = page.more
        self.model.append(page.hits)
        n = len(self.model.hits)
        if not n:
            self.summary.setText(f"No message contains “{text}”.")
        else:
            self.summary.setText(f"{n}{'+' if self._more else ''} message{'s' if n != 1 else ''} found, newest "
                                 "first" + (" (scroll for older ones)" if self._more else "")
                                 + " — Enter opens the selected one.")
        return True

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        if self._more is not None and value >= self.results.verticalScrollBar().maximum() - MORE_PX:
            QTimer.singleShot(0, self, self.fetch_more)

    def hits(self) -> list[SearchHit]:
        """The hits listed so far, top to bottom."""
        return list(self.model.hits)

    @Slot()
    def _open_current(self) -> None:
        if self._timer.isActive():  # Enter right after typing: search first
            self._timer.stop()
            self.run_search()
        if self.results.currentIndex().isValid():
            self._open(self.results.currentIndex())

    @Slot(QModelIndex)
    def _open(self, index: QModelIndex) -> None:
        hit: SearchHit = index.data(HIT_ROLE)
        self.openRequested.emit(hit.conversation_id, hit.message_id)
        self.accept()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """↑/↓ in the query box move through the results, so the hands stay on the keyboard."""
        if watched is self.query and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            step = {Qt.Key.Key_Down: 1, Qt.Key.Key_Up: -1}.get(Qt.Key(event.key()))
            count = self.model.rowCount()
            if step and count:
                row = min(max(self.results.currentIndex().row() + step, 0), count - 1)
                self.results.setCurrentIndex(self.model.index(row))
                if row == count - 1:
                    self.fetch_more()
                return True
        return super().eventFilter(watched, event)

