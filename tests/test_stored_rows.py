"""Rows another tool wrote straight into the database — dates past year 9999, text where numbers belong,
invalid UTF-8, broken token blobs — never stop the list, a backup or the app's start: each is shown
with a placeholder, and the backup can be imported again."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from app.chat.conversation_model import UNKNOWN_DATE, date_group
from app.core import transfer
from app.core.settings import Settings
from app.core.store import Store

YEAR_10000 = 253_402_300_800.0  # 10000-01-01T00:00:00Z


def _write_hostile_rows(db: Path) -> None:
    conn = sqlite3.connect(db)
    rows = [  # id, title, created_at, updated_at
        ("far", "Year ten thousand", 1_700_000_000.0, YEAR_10000 + 86_400),
        ("text", "Dated in words", "soon", "yesterday"),
        ("inf", "Infinite", float("-inf"), float("inf")),
        ("blob", None, 1_700_000_000.0, 1_700_000_000.0),
    ]
    for cid, title, created, updated in rows:
        conn.execute("INSERT INTO conversations (id, title, created_at, updated_at, current_leaf_id) "
                     "VALUES (?, ?, ?, ?, ?)", (cid, title if title else b"\xffblob title", created, updated,
                                                f"{cid}-m"))
        conn.execute("INSERT INTO messages (id, conversation_id, role, content, created_at, token_ids, "
                     "tokens_per_s) VALUES (?, ?, 'assistant', CAST(x'48e9ff6c6c6f' AS TEXT), ?, x'010203', "
                     "'fast')", (f"{cid}-m", cid, created))
    conn.commit()
    conn.close()


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Store]:
    db = tmp_path / "chats.db"
    Store.open(db)[0].close()
    _write_hostile_rows(db)
    store, notice = Store.open(db)
    assert notice is None  # nothing here is damage: the rows are valid SQLite
    yield store
    store.close()


def test_listing_and_reading_rows_with_impossible_values_works_with_placeholders(hostile: Store) -> None:
    convs = {c.id: c for c in hostile.list_conversations()}
    assert set(convs) == {"far", "text", "inf", "blob"}
    assert convs["blob"].title == "\ufffdblob title"
    msg = hostile.messages("text")[0]
    assert msg.content == "H\ufffd\ufffdllo"
    assert msg.token_ids is None and msg.tokens_per_s is None
    assert [date_group(convs[c].updated_at) for c in ("far", "text", "inf")] == [UNKNOWN_DATE] * 3
    assert date_group(convs["blob"].updated_at, today=date(2023, 11, 14)) == "Today"


def test_a_backup_of_such_rows_is_written_and_imports_again(hostile: Store, tmp_path: Path) -> None:
    text = json.dumps(transfer.export_json(hostile), ensure_ascii=False)
    markdown = transfer.export_markdown(hostile)
    assert markdown.count("unknown date") == 2  # "text" and "inf" were created at no showable time
    fresh, _ = Store.open(tmp_path / "fresh.db")
    try:
        summary = transfer.import_json(fresh, text.encode("utf-8"))
        assert summary.conversations_added == 4
        far = fresh.get_conversation("far")
        assert far.created_at == 1_700_000_000.0
        assert date_group(far.updated_at) != UNKNOWN_DATE  # written back as the last date in range
    finally:
        fresh.close()


def test_the_main_window_starts_on_such_rows_and_shows_them(qtbot, hostile: Store, tmp_path: Path) -> None:
    from app.shell.main_window import MainWindow

    window = MainWindow(hostile, Settings(), model=None, window_state=tmp_path / "window.ini")
    qtbot.addWidget(window)
    try:
        titles = window.sidebar.titles()
        assert sorted(titles) == sorted(["Year ten thousand", "Dated in words", "Infinite", "\ufffdblob title"])
        model = window.sidebar.model
        items = [model.index(i).data() for i in range(model.rowCount())]
        assert UNKNOWN_DATE in items
        for cid in ("far", "text", "inf", "blob"):
            window.session.open(cid)
            assert window.chat_view.message_ids() == [f"{cid}-m"]
    finally:
        window.close()
