"""Child process for test_read_only_home: starts the real app (`app.shell.gui.run`) on a TINYCHAT_HOME
mounted read-only, looks at the window it opened, tries a save and an export, and quits.
Prints one JSON object."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.shell import gui
from app.shell.main_window import MainWindow
from app.shell.transfer_actions import write_export


def main(export_to: Path) -> None:
    app = QApplication([])
    seen: dict[str, object] = {}

    def look() -> None:
        windows = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["windows"] = len(windows)
        if windows:
            w = windows[0]
            seen["read_only"] = w.store.read_only
            seen["notice"] = w.notice_label.text()
            seen["titles"] = w.sidebar.titles()
            conv = w.store.list_conversations()[0]
            w.session.open(conv.id)
            seen["messages"] = [m.content for m in w.store.active_branch(conv.id)]
            w.sidebar.renameRequested.emit(conv.id, "a new name")  # what the Rename dialog sends
            seen["rename_notice"] = w.notice_label.text()
            seen["export"] = write_export(w.store, export_to)
            w.close()
        app.quit()

    QTimer.singleShot(0, look)
    seen["rc"] = gui.run([])
    print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
