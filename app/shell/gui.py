"""Starts the Qt application and shows the main window."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

log = logging.getLogger(__name__)


def run(qt_args: list[str]) -> int:
    """Create the QApplication (theme, icon), open the store and settings, show the main window and run
    the event loop. Returns the exit code."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.core import paths
    from app.core.logging_setup import setup_logging
    from app.core.resources import resource_path
    from app.core.settings import load_settings
    from app.core.store import Store
    from app.core.store_types import StoreError
    from app.shell.main_window import MainWindow
    from app.shell.qt_messages import install_filter
    from app.ui import theme

    setup_logging()
    install_filter()
    # Reuse an existing instance: `tinychat --self-test` creates it first so it can check the running app.
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("TinyChat")
    app.setOrganizationName("TinyChat")
    app.setDesktopFileName("tinychat")
    app.setWindowIcon(QIcon(str(resource_path("assets/tinychat.png"))))
    settings, warnings = load_settings(paths.settings_path())
    theme.apply(app, settings.theme, settings.font_size)
    try:
        store, notice = Store.open_or_read_only(paths.db_path())  # a read-only home can still be read
    except StoreError as e:
        log.error("cannot open the store: %s", e.detail)
        QMessageBox.critical(None, "TinyChat", e.message)
        return 1
    window = MainWindow(store, settings)
    from app.shell.window_actions import install

    window.actions_ = install(window)  # settings, models, search, export/import, about, first run
    if settings.theme == "system":
        # Follow the desktop when it switches between light and dark while the app runs.
        app.styleHints().colorSchemeChanged.connect(window.apply_system_theme)
    window.show()
    for text in ([notice] if notice else []) + warnings:
        window.show_notice(text)
    stop_on_signals(window)
    try:
        return app.exec()
    finally:
        store.close()


def stop_on_signals(window: QWidget) -> None:
    """Ctrl+C in a terminal, or SIGTERM at logout, closes the window the normal way: the answer
    being written is saved as partial and the engine thread is joined before exit."""
    import signal

    from PySide6.QtCore import QTimer

    def close(signum: int, _frame: object) -> None:
        log.info("signal %d: closing", signum)
        window.close()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, close)
    # Python runs signal handlers only between bytecodes; an idle timer gives it the chance while
    # Qt's event loop (C++) waits.
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
