"""The settings in force, and the one way to change them: `apply(new)` saves them and emits
`changed(old, new)`, so every part of the window that depends on a setting follows it from one signal."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal

from app.core import paths
from app.core.settings import Settings, SettingsError, save_settings

log = logging.getLogger(__name__)


def save_to_config(settings: Settings) -> None:
    """Write `settings` to the user's settings file (raises SettingsError)."""
    save_settings(settings, paths.settings_path())


class SettingsService(QObject):
    """Owns the current Settings. Nothing else writes them, in memory or on disk."""

    changed = Signal(object, object)  # old Settings, new Settings

    def __init__(self, settings: Settings, save: Callable[[Settings], None] = save_to_config) -> None:
        super().__init__()
        self._current = settings
        self._save = save

    @property
    def current(self) -> Settings:
        return self._current

    def apply(self, new: Settings) -> str:
        """Make `new` the settings in force and save them. Returns "" or, when the disk refused, a sentence
        for the user: the change still applies now, it just will not be remembered."""
        if new == self._current:
            return ""
        old, self._current = self._current, new
        error = ""
        try:
            self._save(new)
        except SettingsError as e:
            log.warning("settings not saved: %s", e.detail)
            error = e.message
        self.changed.emit(old, new)
        return error
