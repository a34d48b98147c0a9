"""A full or read-only disk gives a clear sentence, stores nothing half-way and loses no text."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.store import Store, StoreError
from app.core.store_file import open_database
from app.core.store_writer import StreamingWriter

CHILD = Path(__file__).with_name("store_disk_child.py")


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[Store, sqlite3.Connection]]:
    """A store over a connection the test holds too, so it can make SQLite itself refuse writes."""
    conn = open_database(tmp_path / "chats.db").conn
    store = Store(conn, tmp_path / "chats.db")
    yield store, conn
    store.close()


def _can_mount_tmpfs(tmp_path: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k none {tmp_path}"],
                           capture_output=True)
    return probe.returncode == 0


def test_on_a_really_full_then_read_only_disk_nothing_is_lost(tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    if not _can_mount_tmpfs(folder):
        pytest.skip("needs unprivileged user namespaces (unshare -rm) to mount a small tmpfs")
    script = f"mount -t tmpfs -o size=600k none {folder} && exec {sys.executable} {CHILD} {folder}"
    run = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    steps = {r["step"]: r for r in map(json.loads, run.stdout.splitlines())}
    assert "disk is full" in steps["full-add"]["error"] and "text is still here" in steps["full-add"]["error"]
    assert "disk is full" in steps["full-stream"]["writer_error"]
    assert "disk is full" in steps["full-finish"]["error"]
    assert steps["retry"] == {"step": "retry", "added": True, "answer_ok": True,
                              "answer_len": len("streamed while the disk was full " * 300)}
    assert steps["remount"]["rc"] == 0, steps["remount"]["stderr"]
    assert "cannot write to" in steps["readonly-open"]["error"]
    assert steps["readonly-after"]["unchanged"] is True
    assert not any("corrupt" in name for name in steps["readonly-after"]["files"])


def test_full_database_refuses_a_message_cleanly_and_the_same_text_saves_on_retry(
        opened: tuple[Store, sqlite3.Connection]) -> None:
    store, conn = opened
    conv = store.create_conversation()
    first = store.add_message(conv.id, None, "user", "short")
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full" limit
    text = "a message too big for what is left " * 400
    with pytest.raises(StoreError) as info:
        store.add_message(conv.id, first.id, "user", text)
    assert "disk is full" in info.value.message and "still here" in info.value.message
    assert [m.id for m in store.active_branch(conv.id)] == [first.id]
    assert store.get_conversation(conv.id).current_leaf_id == first.id
    conn.execute("PRAGMA max_page_count = 1000000")
    assert store.add_message(conv.id, first.id, "user", text).content == text


def test_read_only_database_refuses_writes_with_a_sentence_and_keeps_the_writer_text(
        opened: tuple[Store, sqlite3.Connection]) -> None:
    store, conn = opened
    conv = store.create_conversation()
    q = store.add_message(conv.id, None, "user", "question")
    writer = StreamingWriter.start(store, conv.id, q.id, interval=0.0)
    writer.append("part one, ")
    conn.execute("PRAGMA query_only = 1")  # every write now fails as on a read-only disk
    assert writer.append("part two") is False
    assert writer.error is not None and "cannot write to" in writer.error.message
    with pytest.raises(StoreError):
        writer.finish("complete")
    assert writer.text == "part one, part two"
    conn.execute("PRAGMA query_only = 0")
    saved = writer.finish("complete")
    assert (saved.content, saved.status) == ("part one, part two", "complete")
    assert writer.error is None
