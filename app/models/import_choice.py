"""Asking how to take in a model file the user picked: copy it into TinyChat's models folder (safe if
the original moves) or use it where it is (no second copy on disk)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from engine.download import human


class ImportChoice(QMessageBox):
    """Copy into TinyChat · Use it where it is · Cancel. `in_place()` after it closed: the answer."""

    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Use a model file")
        self.setIcon(QMessageBox.Icon.Question)
        size = human(path.stat().st_size) if path.exists() else "its size"
        self.setText(f"How should TinyChat use {path.name}?")
        self.setInformativeText(
            f"Copying it into TinyChat's models folder takes {size} more disk space, and TinyChat keeps "
            "working if you later move or delete your file.\n\nUsing it where it is takes no space, but the "
            "file must stay there: if it is moved or deleted, TinyChat can no longer use it.")
        self.copy_button = self.addButton("Copy into TinyChat", QMessageBox.ButtonRole.AcceptRole)
        self.in_place_button = self.addButton("Use it where it is", QMessageBox.ButtonRole.AcceptRole)
        self.addButton(QMessageBox.StandardButton.Cancel)
        self.setDefaultButton(self.copy_button)

    def in_place(self) -> bool | None:
        """True: use it where it is; False: copy it; None: the user cancelled."""
        clicked = self.clickedButton()
        if clicked is self.in_place_button:
            return True
        return False if clicked is self.copy_button else None


def ask_in_place(path: Path, parent: QWidget | None = None) -> bool | None:
    """Ask (modal) how to use `path`; see `ImportChoice.in_place`."""
    box = ImportChoice(path, parent)
    box.exec()
    return box.in_place()
