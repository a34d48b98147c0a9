"""Where the user types: Enter sends, Shift+Enter starts a new line, the box grows with its text,
and the Send button turns into Stop while an answer is being generated."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

MAX_LINES = 10
PLACEHOLDER = "Message TinyLlama…  (Enter to send, Shift+Enter for a new line)"
SHORT_PLACEHOLDER = "Message TinyLlama…"  # when the long one would wrap in a narrow window


class _Input(QPlainTextEdit):
    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and not event.modifiers() & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.AltModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # The placeholder wraps like text and the box is one line high: pick one that fits on the line.
        room = int(self.viewport().width() - 2 * self.document().documentMargin())
        fm = self.fontMetrics()
        text = next((t for t in (PLACEHOLDER, SHORT_PLACEHOLDER) if fm.horizontalAdvance(t) <= room), None)
        self.setPlaceholderText(text or fm.elidedText(SHORT_PLACEHOLDER, Qt.TextElideMode.ElideRight, room))


class Composer(QWidget):
    """Message box with Send/Stop. It never clears the text until the controller accepted it."""

    sendRequested = Signal(str)
    stopRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(24, 4, 24, 12)
        outer.setSpacing(4)
        self.notice = QLabel(self)
        self.notice.setObjectName("Notice")
        self.notice.setWordWrap(True)
        self.notice.hide()
        outer.addWidget(self.notice)
        frame = QFrame(self)
        frame.setObjectName("ComposerFrame")
        row = QHBoxLayout(frame)
        row.setContentsMargins(10, 6, 6, 6)
        self.input = _Input(frame)
        self.input.setObjectName("Composer")
        self.input.setAccessibleName("Message")
        self.input.setPlaceholderText(PLACEHOLDER)
        self.input.setTabChangesFocus(True)
        self.input.submitted.connect(self.submit)
        self.input.textChanged.connect(self._grow)
        self.send_button = QPushButton("Send", frame)
        self.send_button.setObjectName("SendButton")
        self.send_button.setToolTip("Send (Enter)")
        self.send_button.clicked.connect(self.submit)
        self.stop_button = QPushButton("Stop", frame)
        self.stop_button.setObjectName("StopButton")
        self.stop_button.setToolTip("Stop generating (Esc)")
        self.stop_button.clicked.connect(self.stopRequested)
        self.stop_button.hide()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        row.addWidget(self.stop_button, 0, Qt.AlignmentFlag.AlignBottom)
        outer.addWidget(frame)
        self._generating = False
        self._blocked_reason: str | None = None
        self._grow()

    # ------------------------------------------------------------------ state
    def set_blocked(self, reason: str | None) -> None:
        """Disable typing with a sentence saying why (no model, model loading…); None enables it."""
        self._blocked_reason = reason
        self.input.setReadOnly(reason is not None)
        self.input.setEnabled(reason is None)
        self.notice.setText(reason or "")
        self.notice.setVisible(reason is not None)
        self._update_buttons()

    def set_generating(self, generating: bool) -> None:
        """Show Stop instead of Send. Typing the next message stays possible."""
        self._generating = generating
        self._update_buttons()

    def _update_buttons(self) -> None:
        self.stop_button.setVisible(self._generating)
        self.send_button.setVisible(not self._generating)
        self.send_button.setEnabled(self._blocked_reason is None)

    def text(self) -> str:
        return self.input.toPlainText()

    def set_text(self, text: str) -> None:
        self.input.setPlainText(text)

    def clear(self) -> None:
        self.input.clear()

    @Slot()
    def focus_input(self) -> None:
        self.input.setFocus()

    @Slot()
    def submit(self) -> None:
        text = self.text().strip()
        if not text or self._blocked_reason is not None:
            return
        self.sendRequested.emit(text)

    @Slot()
    def _grow(self) -> None:
        lines = max(1, min(self.input.document().lineCount(), MAX_LINES))
        # Visual lines count too: a long wrapped paragraph grows the box like real newlines do.
        layout_lines = sum(self.input.document().findBlockByNumber(i).layout().lineCount() or 1
                           for i in range(self.input.document().blockCount()))
        lines = max(lines, min(layout_lines, MAX_LINES))
        m = self.input.contentsMargins()
        height = lines * self.input.fontMetrics().lineSpacing() + 2 * int(self.input.document().documentMargin())
        self.input.setFixedHeight(height + m.top() + m.bottom() + 4)
