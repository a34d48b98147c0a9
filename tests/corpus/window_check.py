"""Child process of the conversation corpus: opens the real main window (offscreen, no model) on each
store given, shows every conversation in it, and prints one JSON line per store."""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

from app.core.settings import Settings
from app.core.store import Store
from app.shell.main_window import MainWindow


def check(home: Path) -> dict[str, object]:
    store, notice = Store.open(home / "data" / "tinychat.db")
    try:
        window = MainWindow(store, Settings(), model=None, window_state=home / "window.ini")
        window.show()
        wrong = []
        conversations = store.list_conversations()
        for conv in conversations:
            window.session.open(conv.id)
            QApplication.processEvents()
            if len(window.chat_view.message_ids()) != len(store.active_branch(conv.id)):
                wrong.append(conv.id)
        listed = len(window.sidebar.titles())
        window.close()
        return {"ok": not wrong and notice is None and listed == len(conversations),
                "conversations": len(conversations), "wrong": wrong, "notice": notice}
    finally:
        store.close()


def main(homes: list[Path]) -> None:
    QApplication([])
    for home in homes:
        try:
            result = check(home)
        except Exception:  # reported per store, so one failure does not hide the others
            result = {"ok": False, "error": traceback.format_exc()[-1500:]}
        print(json.dumps({"home": str(home), **result}), flush=True)


if __name__ == "__main__":
    main([Path(p) for p in sys.argv[1:]])
