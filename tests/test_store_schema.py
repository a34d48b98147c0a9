"""Schema upgrades and damaged databases: no conversation is lost on either."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core import store_schema
from app.core.store import Store, StoreError


def _seed_v1(conn: sqlite3.Connection) -> None:
    """Data as TinyChat with schema version 1 wrote it."""
    now = time.time()
    conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, current_leaf_id) "
                 "VALUES ('c1', 'Old chat', ?, ?, 'm2')", (now, now))
    conn.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at) "
                 "VALUES ('m1', 'c1', NULL, 'user', 'remember the lighthouse', ?)", (now,))
    conn.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, status, created_at) "
                 "VALUES ('m2', 'c1', 'm1', 'assistant', 'I will remember it', 'partial', ?)", (now,))


# One seeding function per released schema version below the current one. A new migration fails
# test_every_older_version_has_upgrade_data until its predecessor's data is added here.
SEEDS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _seed_v1}


def _build_at(path: Path, version: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    store_schema.migrate(conn, target=version)
    conn.execute("BEGIN")
    SEEDS[version](conn)
    conn.execute("COMMIT")
    conn.close()


def test_every_older_version_has_upgrade_data() -> None:
    assert set(SEEDS) == set(range(1, store_schema.SCHEMA_VERSION))


def test_new_database_is_created_at_the_current_version(tmp_path: Path) -> None:
    store, _ = Store.open(tmp_path / "chats.db")
    store.close()
    conn = sqlite3.connect(tmp_path / "chats.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_schema.SCHEMA_VERSION
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("version", sorted(SEEDS))
def test_a_database_from_an_older_version_upgrades_with_its_data_searchable(tmp_path: Path,
                                                                            version: int) -> None:
    path = tmp_path / "chats.db"
    _build_at(path, version)
    store, notice = Store.open(path)
    assert notice is None
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert store_schema.user_version(conn) == store_schema.SCHEMA_VERSION
    assert [m.content for m in store.active_branch("c1")] == ["remember the lighthouse", "I will remember it"]
    assert store.active_branch("c1")[1].status == "partial"
    assert [h.message_id for h in store.search("lighthouse")] == ["m1"]
    store.add_message("c1", "m2", "user", "still works")  # new rows are indexed by the new triggers
    assert [h.message_id for h in store.search("works")] == [store.get_conversation("c1").current_leaf_id]
    store.close()


def test_an_upgrade_first_backs_up_the_old_database(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    _build_at(path, 1)
    Store.open(path)[0].close()
    backup = tmp_path / f"chats.db.before-v{store_schema.SCHEMA_VERSION}.bak"
    conn = sqlite3.connect(backup)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    row = conn.execute("SELECT content FROM messages WHERE id = 'm1'").fetchone()
    assert row[0] == "remember the lighthouse"


def test_a_failed_upgrade_leaves_the_previous_version_and_its_data_intact(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    _build_at(path, 1)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE messages_fts (x)")  # makes migration 2 fail halfway
    conn.commit()
    conn.close()
    with pytest.raises(StoreError):
        Store.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 2
    leftovers = conn.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'messages_fts_%'")
    assert leftovers.fetchone()[0] == 0


def test_a_database_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    Store.open(path)[0].close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {store_schema.SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert "newer version of TinyChat" in info.value.message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" in p.name) == []


def _assert_moved_aside(tmp_path: Path, path: Path, original: bytes) -> None:
    store, notice = Store.open(path)
    moved = [p for p in tmp_path.iterdir() if p.name.startswith("chats.db.corrupt-") and "-wal" not in p.name
             and "-shm" not in p.name]
    assert len(moved) == 1
    assert moved[0].read_bytes() == original
    assert notice is not None and str(moved[0]) in notice
    conv = store.create_conversation()
    store.add_message(conv.id, None, "user", "a fresh start")
    assert [c.id for c in store.list_conversations()] == [conv.id]
    store.close()


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_fresh_one_created(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    original = b"This is a shopping list, not SQLite.\n" * 200
    path.write_bytes(original)
    _assert_moved_aside(tmp_path, path, original)


def test_a_database_with_damaged_pages_is_moved_aside_and_the_user_told_where(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    store, _ = Store.open(path)
    conv = store.create_conversation()
    parent = None
    for i in range(200):
        parent = store.add_message(conv.id, parent, "user", f"message {i} " + "lorem ipsum " * 40).id
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 10 * page
    for offset in range(3 * page, 8 * page, 7):  # scribble over a run of b-tree pages
        data[offset] = 0xA5
    path.write_bytes(bytes(data))
    _assert_moved_aside(tmp_path, path, bytes(data))


def test_a_path_that_cannot_be_opened_raises_store_error_without_moving_anything(tmp_path: Path) -> None:
    path = tmp_path / "chats.db"
    path.mkdir()  # a directory where the database should be
    with pytest.raises(StoreError) as info:
        Store.open(path)
    assert "could not open your conversations" in info.value.message
    assert path.is_dir() and [p.name for p in tmp_path.iterdir()] == ["chats.db"]


def test_a_folder_that_cannot_be_created_raises_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(StoreError) as info:
        Store.open(tmp_path / "file" / "data" / "chats.db")
    assert "cannot create its folder" in info.value.message
