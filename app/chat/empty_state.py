"""What an empty chat shows: the app's icon and name, and one sentence — an invitation to ask, or why the
chat cannot start yet (no model, loading, a load error)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.core.resources import resource_path

INVITATION = "Ask anything. TinyLlama runs entirely on this computer — nothing you type leaves it."


class EmptyState(QWidget):
    """The icon, "TinyChat" and `hint`, centred."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 120, 0, 0)
        icon = QLabel(self)
        icon.setPixmap(QIcon(str(resource_path("assets/tinychat.png"))).pixmap(64, 64))
        icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        title = QLabel("TinyChat", self)
        title.setObjectName("EmptyTitle")
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel(INVITATION, self)
        self.hint.setObjectName("EmptyHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        lay.addWidget(icon)
        lay.addWidget(title)
        lay.addWidget(self.hint)
