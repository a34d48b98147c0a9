"""Renaming a chat: a small dialog with the current name selected, Enter renames, Escape keeps it.

A dialog rather than an editor inside the sidebar row, because a screen reader (and a journey test)
sees and reaches a dialog's named text box, while Qt does not expose an item view's inline editor to
the accessibility bus.
"""

from __future__ import annotations

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

MAX_TITLE = 200  # longer names only ever come from a paste; the sidebar shows one line anyway


class RenameDialog(QDialog):
    """Asks for a chat's new name; emits `renamed(conversation_id, title)` when accepted with a new,
    non-empty name. Opened window-modal and non-blocking (`open()`), so the window keeps painting."""

    renamed = Signal(str, str)

    def __init__(self, conversation_id: str, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.conversation_id, self.old_title = conversation_id, title
        self.setObjectName("RenameDialog")
        self.setWindowTitle("Rename chat")
        lay = QVBoxLayout(self)
        label = QLabel("&Name of this chat:", self)
        self.name_box = QLineEdit(title, self)
        self.name_box.setObjectName("ChatNameBox")
        self.name_box.setAccessibleName("Chat name")
        self.name_box.setMaxLength(MAX_TITLE)
        self.name_box.selectAll()  # typing replaces the old name, as in a file manager
        self.name_box.setMinimumWidth(320)
        label.setBuddy(self.name_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel, self)
        self.rename_button = buttons.addButton("Rename", QDialogButtonBox.ButtonRole.AcceptRole)
        self.rename_button.setDefault(True)  # Enter in the name box renames
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.name_box.textChanged.connect(self._on_text)
        lay.addWidget(label)
        lay.addWidget(self.name_box)
        lay.addWidget(buttons)
        self._on_text(title)

    def new_title(self) -> str:
        """The name as typed, without surrounding spaces."""
        return self.name_box.text().strip()

    @Slot(str)
    def _on_text(self, _text: str) -> None:
        self.rename_button.setEnabled(bool(self.new_title()))  # an empty name is not a name

    def accept(self) -> None:
        title = self.new_title()
        if not title:
            return
        super().accept()
        if title != self.old_title:
            self.renamed.emit(self.conversation_id, title)
