"""Starts the Qt application and shows the main window."""

from __future__ import annotations

import sys


def run(qt_args: list[str]) -> int:
    """Create the QApplication, show the main window and run the event loop."""
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    # Reuse an existing instance: `tinychat --self-test` creates it first so it can check the running app.
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("TinyChat")
    window = QMainWindow()
    window.setWindowTitle("TinyChat")
    window.setCentralWidget(QLabel("TinyChat is being built."))
    window.resize(900, 640)
    window.show()
    return app.exec()
