"""The line that marks where the messages the model no longer sees end, in the chat column."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

FORGOTTEN_TEXT = ("Older messages above this line are not in context: the model's 2048-token window no "
                  "longer holds them, so it does not see them.")


class ForgottenDivider(QLabel):
    """A centred, wrapped note (styled as `#ForgottenDivider` in the theme), hidden until placed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(FORGOTTEN_TEXT, parent)
        self.setObjectName("ForgottenDivider")
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hide()

    def place(self, layout: QVBoxLayout, next_to: QWidget | None, after: bool = False) -> None:
        """Show the divider in `layout` just before `next_to` (or just after it); hide it when None."""
        # Taken out first, so the index of `next_to` is counted without the divider's old place.
        layout.removeWidget(self)
        if next_to is None:
            self.hide()
            return
        layout.insertWidget(layout.indexOf(next_to) + (1 if after else 0), self)
        self.show()
