"""A flat push button that may be narrower than its text: it ends in "…" instead of holding the window wide,
and screen readers and the tooltip get the whole text (the status bar's network summary grows with every
download and request of a long session)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QPushButton, QSizePolicy, QWidget


class ElidedButton(QPushButton):
    """`text()` is the whole text; what is painted is elided at the right to the button's width."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self._hint = super().sizeHint()
        self._tip = ""
        # A push button's policy is Minimum (its size hint is its least width); this one may shrink.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, self.sizePolicy().verticalPolicy())

    def text(self) -> str:  # type: ignore[override]
        return self._full

    def setText(self, text: str) -> None:  # type: ignore[override]
        self._full = text
        super().setText(text)
        self._hint = super().sizeHint()  # the whole text's width, asked for while there is room
        self.setAccessibleName(text)
        self.updateGeometry()
        self._fit()

    def setToolTip(self, tip: str) -> None:  # type: ignore[override]
        self._tip = tip
        self._fit()

    def sizeHint(self) -> QSize:
        return self._hint

    def minimumSizeHint(self) -> QSize:
        chrome = self._hint.width() - self.fontMetrics().horizontalAdvance(self._full)
        return QSize(chrome + self.fontMetrics().horizontalAdvance("…"), self._hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        fm = self.fontMetrics()
        room = self.width() - (self._hint.width() - fm.horizontalAdvance(self._full))
        shown = self._full if fm.horizontalAdvance(self._full) <= room else fm.elidedText(
            self._full, Qt.TextElideMode.ElideRight, max(room, 0))
        if shown != super().text():
            super().setText(shown)
        cut = shown != self._full
        super().setToolTip("\n\n".join(t for t in (self._full if cut else "", self._tip) if t))
