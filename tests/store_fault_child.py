"""Child process for test_store_faults: the real app (main window, llama.cpp on the scripted model)
with its whole TINYCHAT_HOME on a tiny tmpfs, filling that disk for real just before the k-th write
transaction of a chat turn, an import or an export, then freeing it. Prints one JSON object per case.

The hook is SQLite's own statement trace: when the k-th `BEGIN IMMEDIATE` starts, the disk is filled,
so that write and every one after it meet a really full disk until the case frees it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtWidgets import QApplication

import app.chat.answer_keeper as answer_keeper
import app.core.store_writer as store_writer
import app.shell.main_window as main_window
from app.core import transfer
from app.core.atomic_write import write_text_atomically
from app.core.settings import Settings
from app.core.store import Store
from app.core.store_types import StoreError
from tests.gui_support import PacedEngine, scripted_model, wait_for

ROOT = Path(__file__).resolve().parents[1]
store_writer.DEFAULT_INTERVAL_S = 0.02  # several streaming writes per answer, so each can be hit
answer_keeper.RETRY_MS = 100


def report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


class Disk:
    """The tmpfs under the home: `fill` takes every free block, `free` gives them back."""

    def __init__(self, folder: Path) -> None:
        self.filler = folder / "filler"

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
            try:
                while True:
                    fh.write(b"\0" * 512)
            except OSError:
                pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


class WriteCounter:
    """Counts the store's write transactions and fills the disk when the chosen one begins."""

    def __init__(self, store: Store, disk: Disk) -> None:
        self.disk, self.count, self.fail_at = disk, 0, 0
        store._conn.set_trace_callback(self._seen)

    def arm(self, fail_at: int) -> None:
        self.count, self.fail_at = 0, fail_at

    def _seen(self, sql: str) -> None:
        if sql.startswith("BEGIN IMMEDIATE"):
            self.count += 1
            if self.count == self.fail_at:
                self.disk.fill()


def stored_turn(db: Path, conversation_id: str | None) -> list[list[str]]:
    """Every message of the conversation, read by a separate connection: what is really on disk."""
    if conversation_id is None:
        return []
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT role, content, status FROM messages WHERE conversation_id = ? "
                            "ORDER BY seq", (conversation_id,)).fetchall()
    finally:
        conn.close()
    return [list(r) for r in rows]


def chat_turns(app: QApplication, home: Path, disk: Disk) -> None:
    db = home / "data" / "tinychat.db"
    store, _ = Store.open(db)
    engine = PacedEngine(0.02)
    window = main_window.MainWindow(store, Settings(), engine_factory=lambda: engine,
                                    model=scripted_model(), window_state=home / "window.ini")
    window.show()
    assert wait_for(lambda: window.session.model.status.ready, 30), window.session.model.status.text
    notices: list[str] = []
    window.session.notice.connect(notices.append)
    counter = WriteCounter(store, disk)

    def turn(fail_at: int) -> dict[str, object]:
        notices.clear()
        window.new_chat()
        question = f"question {fail_at}: every word of it must reach the disk"
        counter.arm(fail_at)
        window.composer.set_text(question)
        window.composer.submit()
        wait_for(lambda: not window.session.generating, 30)
        writes, refused = counter.count, window.composer.text() == question
        held_at_end = len(window.session.controller.keeper)
        disk.free()
        counter.arm(0)
        if refused:  # the user presses Enter again once there is room
            window.composer.submit()
            wait_for(lambda: not window.session.generating, 30)
        branch = stored_turn(db, window.session.open_id)
        if branch and branch[-1][0] == "user":  # the answer never started: the user asks again
            window.regenerate_action.trigger()  # Ctrl+R
            wait_for(lambda: not window.session.generating, 30)
        wait_for(lambda: len(window.session.controller.keeper) == 0, 10)
        return {"question": question, "refused": refused, "writes": writes, "held": held_at_end,
                "notices": list(notices), "stored": stored_turn(db, window.session.open_id)}

    clean = turn(0)
    report(case="clean", **clean)
    for k in range(1, int(clean["writes"]) + 1):  # type: ignore[call-overload]
        report(case=f"chat-write-{k}", **turn(k))

    # Closing while the disk is still full: the window asks, the user frees space and retries.
    asked: list[int] = []

    def free_and_retry(_parent: object, count: int) -> bool:
        asked.append(count)
        disk.free()
        return True

    main_window.ask_to_retry = free_and_retry  # type: ignore[assignment]
    engine.delay_s = 0.2  # still streaming when the window closes
    notices.clear()
    streamed: dict[str, str] = {}
    controller = window.session.controller
    controller.streamText.connect(lambda _c, mid, text: streamed.__setitem__(mid, text))
    window.new_chat()
    window.composer.set_text("closing while the disk is full")
    window.composer.submit()
    wait_for(lambda: controller.active is not None and bool(controller.active.writer.text), 30)
    conversation = window.session.open_id
    disk.fill()
    window.close()
    app.processEvents()
    report(case="close-while-full", asked=asked, notices=notices, produced=list(streamed.values()),
           stored=stored_turn(db, conversation))
    store.close()


def import_and_export(home: Path, disk: Disk, source: Path) -> None:
    db = home / "data" / "tinychat.db"
    store, _ = Store.open(db)
    before = transfer.export_json(store)["conversations"]
    disk.fill()
    try:
        transfer.import_json(store, source.read_bytes())
        error = None
    except StoreError as exc:
        error = exc.message
    unchanged = transfer.export_json(store)["conversations"] == before
    disk.free()
    added = transfer.import_json(store, source.read_bytes()).conversations_added
    report(case="import", error=error, unchanged=unchanged, added_after=added)

    target = home / "backup.json"
    write_text_atomically(target, "the previous backup\n")
    disk.fill()
    try:
        write_text_atomically(target, json.dumps(transfer.export_json(store)))
        error = None
    except OSError as exc:
        error = exc.strerror
    kept = target.read_text(encoding="utf-8") == "the previous backup\n"
    leftovers = sorted(p.name for p in home.iterdir() if p.name.endswith(".tmp"))
    disk.free()
    write_text_atomically(target, json.dumps(transfer.export_json(store)))
    complete = json.loads(target.read_text(encoding="utf-8"))["conversations"] == transfer.export_json(
        store)["conversations"]
    report(case="export", error=error, kept=kept, leftovers=leftovers, complete_after=complete)
    store.close()


def command_line(home: Path, disk: Disk, source: Path) -> None:
    """`tinychat import` and `export` as a user runs them while the disk (log file included) is full."""
    env = {**os.environ, "TINYCHAT_HOME": str(home)}

    def tinychat(*args: str) -> dict[str, object]:
        run = subprocess.run([sys.executable, "-m", "app", *args], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=60)
        try:
            exported = len(json.loads(run.stdout)["conversations"])
        except ValueError:
            exported = None
        return {"rc": run.returncode, "stdout": run.stdout[-300:], "exported": exported, "stderr": run.stderr}

    disk.fill()
    report(case="cli-import-full", **tinychat("import", str(source)))
    report(case="cli-export-stdout-full", **tinychat("export", "--out", "-"))
    report(case="cli-export-file-full", **tinychat("export", "--out", str(home / "cli.json")))
    disk.free()
    report(case="cli-export-after", **tinychat("export", "--out", str(home / "cli.json")))


def main(folder: Path, source: Path) -> None:
    home = folder / "home"
    os.environ["TINYCHAT_HOME"] = str(home)
    disk = Disk(folder)
    app = QApplication([])
    started = time.monotonic()
    chat_turns(app, home, disk)
    import_and_export(home, disk, source)
    command_line(home, disk, source)
    report(case="done", seconds=round(time.monotonic() - started, 1))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
