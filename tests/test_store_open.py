"""Opening the store checks the whole file only when it was not closed cleanly: a crash, or another
tool writing to it, means a full integrity check at the next start; a clean close means none."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.core.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _store_with_a_chat(path: Path) -> str:
    store, _ = Store.open(path)
    conv = store.create_conversation()
    store.add_message(conv.id, None, "user", "a question worth keeping")
    store.close()
    return conv.id


def test_a_store_closed_cleanly_opens_again_without_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    cid = _store_with_a_chat(path)
    store, notice = Store.open(path)
    assert not store.integrity_checked and notice is None
    assert [c.id for c in store.list_conversations()] == [cid]
    store.close()


def test_a_store_left_open_by_a_crashed_process_is_checked_at_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    _store_with_a_chat(path)
    child = ("import os, sys\nfrom app.core.store import Store\nstore, _ = Store.open(sys.argv[1])\n"
             "conv = store.create_conversation()\nstore.add_message(conv.id, None, 'user', 'typed just before')\n"
             "os._exit(0)\n")  # no close: as when the process is killed or the power goes
    subprocess.run([sys.executable, "-c", child, str(path)], check=True, cwd=ROOT, timeout=60)
    store, notice = Store.open(path)
    assert store.integrity_checked and notice is None
    assert len(store.list_conversations()) == 2
    store.close()
    again, _ = Store.open(path)
    assert not again.integrity_checked  # checked once, closed cleanly since
    again.close()


def test_a_file_another_tool_changed_after_a_clean_close_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    _store_with_a_chat(path)
    data = path.read_bytes()
    path.write_bytes(data)  # byte for byte the same, but written since TinyChat closed it
    store, _ = Store.open(path)
    assert store.integrity_checked
    store.close()


def test_a_second_opening_while_the_first_is_open_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    _store_with_a_chat(path)
    first, _ = Store.open(path)
    second, _ = Store.open(path)
    assert not first.integrity_checked and second.integrity_checked
    second.close()
    first.close()
