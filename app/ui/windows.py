"""A top-level window's title, object name, first size and (for the panels) style, set in one call."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.ui import panel_style


def set_up_window(window: QWidget, title: str, name: str, size: tuple[int, int], *, panel: bool = False) -> None:
    """Title `window`, name it `name` (the style sheets' and tests' handle) and size it; `panel`
    gives it the panel style (muted hints, the primary button, result lists) for its children."""
    window.setWindowTitle(title)
    window.setObjectName(name)
    if panel:
        window.setStyleSheet(panel_style.style_sheet())
    window.resize(*size)
