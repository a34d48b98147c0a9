"""Holding the reading position of a scroll area while the heights of the widgets above it change.

Messages built above the one being read, and heights that settle over several layout passes (word
wrap, polish), would otherwise move the text under the reader's eyes. An anchor keeps one widget at
one viewport y on every range change until the user scrolls; without one, the view sticks to the
bottom when it was there.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QObject, QTimer, Slot
from PySide6.QtWidgets import QScrollBar, QWidget


class ScrollAnchor(QObject):
    """Keeps a widget at a viewport y (or the view at the bottom) while `bar`'s range changes."""

    def __init__(self, bar: QScrollBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._bar = bar
        self._held: tuple[QWidget, int] | None = None
        self._applying = False
        self.stick_to_bottom = True
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    @property
    def holding(self) -> bool:
        return self._held is not None

    def hold(self, widget: QWidget, offset: int) -> None:
        """Put `widget` `offset` pixels below the top of the view now, and keep it there."""
        self._held = (widget, offset)
        self.apply()

    def hold_first_visible(self, widgets: Iterable[QWidget]) -> None:
        """Keep the first of `widgets` (top to bottom) still in view where it is now."""
        top = self._bar.value()
        for w in widgets:
            if w.y() + w.height() > top:
                self._held = (w, w.y() - top)
                QTimer.singleShot(0, self, self.apply)
                return

    def release(self, widget: QWidget | None = None) -> None:
        """Stop holding (only if the held widget is `widget`, when given: it is going away)."""
        if widget is None or (self._held is not None and self._held[0] is widget):
            self._held = None

    @Slot()
    def apply(self) -> None:
        """Scroll so the held widget is where it should be."""
        # Applied on every range change until the user scrolls again: heights settle over more than one
        # layout pass (word wrap, polish), and each pass would otherwise move the text being read.
        if self._held is not None:
            widget, offset = self._held
            self._applying = True
            self._bar.setValue(widget.y() - offset)
            self._applying = False

    @Slot(int)
    def _on_scrolled(self, _value: int) -> None:
        if not self._applying:
            self._held = None  # the user moved: stop holding the old position

    @Slot(int, int)
    def _on_range_changed(self, _lo: int, hi: int) -> None:
        if self._held is not None:
            self.apply()
        elif self.stick_to_bottom:
            self._bar.setValue(hi)
