"""The conversation on screen: a centred column of MessageWidgets in a scroll area.

Long conversations are built in windows: the newest messages first, older ones in batches as the user
scrolls up, so opening a 500-message chat costs the same as opening a 40-message one. Streamed text is
held and painted at most ~30 times a second.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from app.message_widget import MessageView, MessageWidget
from app.resources import resource_path

FRAME_MS = 33  # ~30 repaints a second while streaming
FIRST_WINDOW = 40  # messages built when a conversation opens
BATCH = 30  # older messages built each time the user scrolls near the top
COLUMN_MAX = 860  # the readable line length of the chat column, like LM Studio and ChatGPT


class ChatView(QScrollArea):
    """Shows one conversation's active branch. It renders; the ChatController decides."""

    regenerateRequested = Signal(str)
    editSubmitted = Signal(str, str)
    deleteRequested = Signal(str)
    branchRequested = Signal(str, int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("ChatScroll")
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.column = QWidget()
        self.column.setObjectName("ChatColumn")
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(24, 16, 24, 16)
        self._layout.setSpacing(8)
        self._layout.addStretch(1)  # keeps a short conversation at the top
        self.setWidget(self.column)
        self._empty = self._build_empty_state()
        self._layout.insertWidget(0, self._empty)

        self._widgets: dict[str, MessageWidget] = {}
        self._order: list[str] = []  # ids on screen, oldest first
        self._pending_views: list[MessageView] = []  # older messages not built yet, oldest first
        self._stream_target: str | None = None
        self._stream_text: str | None = None
        self._stick_to_bottom = True
        self._anchor: tuple[int, int] | None = None
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._paint_stream)
        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    def _build_empty_state(self) -> QWidget:
        box = QWidget(self.column)
        lay = QVBoxLayout(box)
        lay.setContentsMargins(0, 120, 0, 0)
        icon = QLabel(box)
        icon.setPixmap(QIcon(str(resource_path("assets/tinychat.png"))).pixmap(64, 64))
        icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        lay.addWidget(icon)
        title = QLabel("TinyChat", box)
        title.setObjectName("EmptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint = QLabel(
            "Ask anything. TinyLlama runs entirely on this computer — nothing you type leaves it.", box)
        self.empty_hint.setObjectName("EmptyHint")
        self.empty_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_hint.setWordWrap(True)
        lay.addWidget(title)
        lay.addWidget(self.empty_hint)
        return box

    # ------------------------------------------------------------ whole chat
    def show_messages(self, views: Sequence[MessageView]) -> None:
        """Replace everything with `views` (a conversation's active branch, oldest first)."""
        self._frame.stop()
        self._stream_text = None
        self.column.setUpdatesEnabled(False)
        for w in self._widgets.values():
            self._layout.removeWidget(w)
            w.hide()  # at once: deleteLater only runs when control is back in the event loop
            w.deleteLater()
        self._widgets.clear()
        self._order.clear()
        split = max(len(views) - FIRST_WINDOW, 0)
        self._pending_views = list(views[:split])
        for view in views[split:]:
            self._insert(len(self._order), view)
        self._empty.setVisible(not views)
        self.column.setUpdatesEnabled(True)
        self._stick_to_bottom = True
        self.scroll_to_bottom()

    def set_empty_hint(self, text: str) -> None:
        self.empty_hint.setText(text)

    def message_widget(self, message_id: str) -> MessageWidget | None:
        return self._widgets.get(message_id)

    def message_ids(self) -> list[str]:
        """Every message of the branch on show, oldest first (built or not)."""
        return [v.message.id for v in self._pending_views] + list(self._order)

    def built_count(self) -> int:
        return len(self._order)

    # ---------------------------------------------------------- single ones
    def append_message(self, view: MessageView) -> MessageWidget:
        self._empty.hide()
        return self._insert(len(self._order), view)

    def update_message(self, view: MessageView) -> None:
        w = self._widgets.get(view.message.id)
        if w is not None:
            w.set_view(view)
        else:
            self._pending_views = [view if v.message.id == view.message.id else v for v in self._pending_views]

    def remove_from(self, message_id: str) -> None:
        """Remove a message and everything shown after it (a branch switch or a delete)."""
        if message_id not in self._order:
            return
        i = self._order.index(message_id)
        for mid in self._order[i:]:
            w = self._widgets.pop(mid)
            self._layout.removeWidget(w)
            w.hide()
            w.deleteLater()
        del self._order[i:]
        self._empty.setVisible(not self._order and not self._pending_views)

    def _insert(self, index: int, view: MessageView) -> MessageWidget:
        w = MessageWidget(view, self.column)
        w.regenerateRequested.connect(self.regenerateRequested)
        w.editSubmitted.connect(self.editSubmitted)
        w.deleteRequested.connect(self.deleteRequested)
        w.branchRequested.connect(self.branchRequested)
        w.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        w.set_bubble_max_width(self._bubble_width())
        self._layout.insertWidget(index + 1, w)  # +1: the empty-state box stays first
        self._widgets[view.message.id] = w
        self._order.insert(index, view.message.id)
        return w

    # -------------------------------------------------------------- streaming
    def stream(self, message_id: str, text: str) -> None:
        """Record the latest text of a streaming answer; it is painted on the next frame tick."""
        self._stream_target, self._stream_text = message_id, text
        if not self._frame.isActive():
            self._frame.start()

    @Slot()
    def _paint_stream(self) -> None:
        if self._stream_text is None:
            self._frame.stop()
            return
        w = self._widgets.get(self._stream_target or "")
        if w is not None:
            w.set_streaming_text(self._stream_text)
        self._stream_text = None

    def flush_stream(self) -> None:
        """Paint any held text now (the answer finished)."""
        self._paint_stream()
        self._frame.stop()

    # -------------------------------------------------------------- scrolling
    def scroll_to_bottom(self) -> None:
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._stick_to_bottom = value >= bar.maximum() - 24
        if value < 400 and self._pending_views:
            QTimer.singleShot(0, self, self._build_older)

    @Slot()
    def _build_older(self) -> None:
        if not self._pending_views or self.verticalScrollBar().value() >= 400:
            return
        batch = self._pending_views[-BATCH:]
        del self._pending_views[-BATCH:]
        bar = self.verticalScrollBar()
        before_max, before_value = bar.maximum(), bar.value()
        self.column.setUpdatesEnabled(False)
        for i, view in enumerate(batch):
            self._insert(i, view)
        self.column.adjustSize()
        self.column.setUpdatesEnabled(True)
        # Keep what the user was reading in place: move down by the height just added above it.
        self._anchor = (before_max, before_value)

    @Slot(int, int)
    def _on_range_changed(self, _lo: int, hi: int) -> None:
        anchor = self._anchor
        bar = self.verticalScrollBar()
        if anchor is not None:
            before_max, before_value = anchor
            self._anchor = None
            bar.setValue(before_value + (hi - before_max))
        elif self._stick_to_bottom:
            bar.setValue(hi)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        side = max((self.viewport().width() - COLUMN_MAX) // 2, 24)
        self._layout.setContentsMargins(side, 16, side, 16)
        width = self._bubble_width()
        for w in self._widgets.values():
            w.set_bubble_max_width(width)

    def _bubble_width(self) -> int:
        return int(min(self.viewport().width(), COLUMN_MAX) * 0.8)
