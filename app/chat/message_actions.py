"""The row of actions under a message: ‹ n/m › between alternatives, Copy, Edit or Regenerate/Retry, and
Delete — real buttons, so the keyboard and assistive technology reach them like any other control.

A chat builds at most a few dozen messages at once (see chat_view), so a handful of flat tool buttons
per message stays cheap; they are created only for the actions the message offers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

LABELS = {"copy": "Copy", "edit": "Edit", "retry": "Retry", "regenerate": "Regenerate", "delete": "Delete",
          "previous": "‹", "next": "›"}
NAMES = {"previous": "Previous version", "next": "Next version"}  # what a screen reader says for ‹ and ›


def offered_actions(role: str, status: str, sibling_index: int, sibling_count: int,
                    streaming: bool) -> list[str]:
    """The actions a message offers, by name, in the order they are shown (none while streaming)."""
    if streaming:
        return []
    names = []
    if sibling_count > 1:
        names += ["previous"] if sibling_index > 0 else []
        names += ["next"] if sibling_index < sibling_count - 1 else []
    names.append("copy")
    if role == "user":
        names.append("edit")
    else:
        names.append("retry" if status != "complete" else "regenerate")
    names.append("delete")
    return names


class ActionRow(QWidget):
    """Buttons for one message's actions; `triggered(name)` when one is pressed."""

    triggered = Signal(str)

    def __init__(self, align_right: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("Actions")
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self._row.setSpacing(0)
        self._row.addStretch(1)  # before the buttons when aligned right, after them when left
        self._trailing_stretch = not align_right
        self._shown: tuple[tuple[str, ...], int, int] | None = None
        self._widgets: list[QWidget] = []

    def show_actions(self, names: list[str], sibling_index: int, sibling_count: int) -> None:
        """Offer `names` (from `offered_actions`); with alternatives, the ‹ n/m › switcher comes first."""
        shown = (tuple(names), sibling_index, sibling_count)
        if shown == self._shown:
            return
        self._shown = shown
        for w in self._widgets:
            self._row.removeWidget(w)
            w.deleteLater()
        self._widgets = []
        if sibling_count > 1:
            self._add_button("previous", enabled="previous" in names)
            counter = QLabel(f"{sibling_index + 1}/{sibling_count}", self)
            counter.setObjectName("MetaLabel")
            counter.setAccessibleName(f"Version {sibling_index + 1} of {sibling_count}")
            self._add(counter)
            self._add_button("next", enabled="next" in names)
        for name in names:
            if name not in ("previous", "next"):
                self._add_button(name)

    def _add_button(self, name: str, enabled: bool = True) -> None:
        button = QToolButton(self)
        button.setObjectName("ActionButton")
        button.setText(LABELS[name])
        button.setAccessibleName(NAMES.get(name, LABELS[name]))
        button.setEnabled(enabled)
        button.setCursor(Qt.CursorShape.PointingHandCursor)
        button.clicked.connect(lambda: self.triggered.emit(name))
        self._add(button)

    def _add(self, widget: QWidget) -> None:
        self._row.insertWidget(self._row.count() - 1 if self._trailing_stretch else self._row.count(), widget)
        self._widgets.append(widget)

    def names(self) -> list[str]:
        """The actions offered now, by name."""
        return list(self._shown[0]) if self._shown else []

    def button(self, name: str) -> QToolButton | None:
        """The button of action `name`, if the message offers it."""
        label = NAMES.get(name, LABELS.get(name))
        return next((w for w in self._widgets if isinstance(w, QToolButton) and w.accessibleName() == label
                     and w.isEnabled()), None)
