"""View ▸ Show sidebar: folds the conversation list away so the chat has the window's width.

A window narrower than COMPACT_WIDTH folds it by itself and unfolds it when widened again; in between,
the menu item (Ctrl+Shift+S) shows it anyway. The user's own choice is kept in `window.ini`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QSettings, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QSplitter, QWidget

COMPACT_WIDTH = 720  # below this the chat needs the room more than the list of chats
SETTING = "window/sidebar"


class SidebarToggle(QObject):
    """Owns `action` (checkable, for the View menu) and the sidebar's visibility in `window`."""

    def __init__(self, window: QWidget, splitter: QSplitter, sidebar: QWidget, state_file: Path) -> None:
        super().__init__(window)
        self.window, self.splitter, self.sidebar, self.state_file = window, splitter, sidebar, state_file
        self.action = QAction("Show &sidebar", window)
        self.action.setCheckable(True)
        self.action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        self.action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.action.toggled.connect(self._on_toggled)
        stored = QSettings(str(state_file), QSettings.Format.IniFormat).value(SETTING, True)
        self.wanted = stored not in (False, "false")  # what the user chose for a wide window
        self._compact = window.width() < COMPACT_WIDTH
        self._forced = False  # shown on purpose while the window is narrow
        window.installEventFilter(self)
        self._sync()

    def shown(self) -> bool:
        """Whether the sidebar is on screen: in a narrow window only on request, else as the user chose."""
        return self._forced if self._compact else self.wanted

    def _sync(self) -> None:
        show = self.shown()
        self.sidebar.setVisible(show)
        if show and self._compact:  # asked for in a narrow window: as narrow as it goes, the chat needs the rest
            self.splitter.setSizes([self.sidebar.minimumWidth(), self.window.width()])
        self.action.blockSignals(True)
        self.action.setChecked(show)
        self.action.blockSignals(False)

    @Slot(bool)
    def _on_toggled(self, checked: bool) -> None:
        if self._compact:
            self._forced = checked
        else:
            self.wanted = checked
        self._sync()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window:
            if event.type() == QEvent.Type.Resize:
                compact = self.window.width() < COMPACT_WIDTH
                if compact != self._compact:
                    self._compact, self._forced = compact, False
                    self._sync()
            elif event.type() == QEvent.Type.Close:
                qs = QSettings(str(self.state_file), QSettings.Format.IniFormat)
                qs.setValue(SETTING, self.wanted)
                qs.sync()
        return super().eventFilter(watched, event)
