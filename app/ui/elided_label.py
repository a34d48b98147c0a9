"""A one-line label that may be narrower than its text: it ends in "…" and shows the whole text as its
tooltip, instead of forcing the window to stay wide (a plain QLabel's minimum width is its text's)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget


class ElidedLabel(QLabel):
    """Plain text on one line, elided at the right when it does not fit. Screen readers get the whole
    text (the accessible name is the label's text, not what is painted)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        m = self.contentsMargins()
        ellipsis = self.fontMetrics().horizontalAdvance("…") + m.left() + m.right() + 2 * self.margin()
        return QSize(min(hint.width(), ellipsis), hint.height())

    def _elided(self) -> str:
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width())

    def setText(self, text: str) -> None:
        super().setText(text)
        self._update_tooltip()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_tooltip()

    def _update_tooltip(self) -> None:
        self.setToolTip("" if self._elided() == self.text() else self.text())

    def paintEvent(self, event: QPaintEvent) -> None:
        elided = self._elided()
        if elided == self.text():
            super().paintEvent(event)
            return
        painter = QPainter(self)
        self.style().drawItemText(painter, self.contentsRect(), int(self.alignment()), self.palette(),
                                  self.isEnabled(), elided, self.foregroundRole())
