"""Styles for the settings, model manager, search and first-run widgets, from the theme's colours.

Set on each top-level widget of those features (so they cascade to its children only); the main style
sheet in theme.py stays the chat window's.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QWidget

from app.ui import theme


def style_sheet() -> str:
    """Muted hint text, the primary (accent) button and the result list, in the current theme."""
    c = theme.current()
    return f"""
QLabel#Muted {{ color: {c.muted}; }}
QPushButton#PrimaryButton {{ background: {c.accent}; color: {c.accent_text}; border: none; border-radius: 8px;
    padding: 8px 16px; font-weight: 600; }}
QPushButton#PrimaryButton:disabled {{ background: {c.border}; color: {c.muted}; }}
QLabel#WelcomeTitle {{ font-weight: 700; }}
QListWidget#SearchResults {{ background: {c.base}; border: 1px solid {c.border}; border-radius: 6px; }}
QListWidget#SearchResults::item {{ border-bottom: 1px solid {c.border}; }}
QListWidget#SearchResults::item:selected {{ background: {c.hover}; }}
QListWidget#SettingsNav {{ background: {c.sidebar}; border: none; outline: none; }}
QListWidget#SettingsNav::item {{ padding: 8px 10px; border-radius: 6px; margin: 1px 4px; }}
QListWidget#SettingsNav::item:selected {{ background: {c.accent}; color: {c.accent_text}; }}
"""


def scrolling(page: QWidget) -> QScrollArea:
    """`page` in a frameless scroll area: on a short screen it scrolls instead of squeezing its rows
    into each other (a layout below its minimum height draws widgets over one another)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setWidget(page)
    return area


def hint(text: str) -> QLabel:
    """A wrapped line of muted explanation under a setting (styled by `style_sheet`)."""
    label = QLabel(text)
    label.setObjectName("Muted")
    label.setWordWrap(True)
    return label


def combo(options: dict[str, str], current: str) -> QComboBox:
    """A drop-down of `options` (stored value: label shown), `current` selected (the first if absent)."""
    box = QComboBox()
    for key, label in options.items():
        box.addItem(label, key)
    box.setCurrentIndex(max(box.findData(current), 0))
    return box
