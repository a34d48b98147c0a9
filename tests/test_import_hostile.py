"""Import of files an attacker or a careless tool wrote: dates the app cannot show, half UTF-16 pairs,
other encodings. Each is refused with a sentence or repaired, and what is stored can always be shown
and exported again."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import transfer
from app.core.store import Store
from app.core.store_types import ImportRejected


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "chats.db")
    yield s
    s.close()


def _doc(title: str = "Soup", created: str = "2024-05-01T10:00:00+00:00", updated: str | None = None,
         message_time: str | None = None, content: str = "How do I make soup?") -> dict[str, Any]:
    return {"format": "tinychat-conversations", "version": 1, "conversations": [{
        "id": "c1", "title": title, "created_at": created, "updated_at": updated or created,
        "messages": [{"id": "m1", "role": "user", "content": content, "status": "complete",
                      "created_at": message_time or created}]}]}


@pytest.mark.parametrize(("field", "doc"), [
    ("updated_at", _doc(updated="9999-12-31T23:59:59-12:00")),
    ("created_at", _doc(created="0001-01-01T00:00:00+14:00")),
    ("created_at", _doc(message_time="9999-12-31T23:00:00-14:00")),
    ("created_at", _doc(created="1969-12-31T23:59:59+00:00")),
    ("updated_at", _doc(updated="3000-01-01T00:00:00+00:00")),
])
def test_a_date_the_app_could_not_show_is_refused_naming_the_field_and_nothing_is_stored(
        store: Store, field: str, doc: dict[str, Any]) -> None:
    with pytest.raises(ImportRejected) as info:
        transfer.import_json(store, json.dumps(doc))
    assert f"“{field}”" in info.value.message
    assert "1970–2999" in info.value.message or "not a date" in info.value.message
    assert store.list_conversations() == []


def test_the_first_and_last_dates_of_the_range_import_and_export_back_unchanged(store: Store) -> None:
    doc = _doc(created="1970-01-01T00:00:00+00:00", updated="2999-12-31T23:59:59+00:00")
    transfer.import_json(store, json.dumps(doc))
    back = transfer.export_json(store)["conversations"][0]
    assert (back["created_at"], back["updated_at"]) == ("1970-01-01T00:00:00+00:00", "2999-12-31T23:59:59+00:00")
    assert "# Soup" in transfer.export_markdown(store)


def test_half_of_a_utf16_pair_in_title_or_content_becomes_a_replacement_character(store: Store) -> None:
    raw = json.dumps(_doc(title="bad \ud800 title", content="lone \udfff low, pair \ud83c\udf89 kept"))
    assert "\\ud800" in raw  # the file spells the lone halves as JSON escapes, as a hostile file would
    summary = transfer.import_json(store, raw)
    assert summary.added_titles == ("bad \ufffd title",)
    (message,) = store.messages("c1")
    assert message.content == "lone \ufffd low, pair 🎉 kept"
    json.dumps(transfer.export_json(store), ensure_ascii=False).encode("utf-8")  # exports as real UTF-8


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16"])
def test_a_file_an_editor_saved_with_a_byte_order_mark_imports_like_plain_utf8(store: Store, codec: str) -> None:
    raw = json.dumps(_doc(title="Café 世界"), ensure_ascii=False).encode(codec)
    assert raw.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    assert transfer.import_json(store, raw).added_titles == ("Café 世界",)


@pytest.mark.parametrize("raw", [
    json.dumps(_doc(title="Café")).replace("\\u00e9", "\u00e9").encode("latin-1"),
    json.dumps(_doc()).encode("utf-16-le"),  # UTF-16 without a byte order mark
    b'{"format": "tinychat-conversations", "title": "\xed\xa0\x80"}',  # a surrogate encoded as UTF-8
])
def test_text_in_another_encoding_is_refused_as_not_utf8(store: Store, raw: bytes) -> None:
    with pytest.raises(ImportRejected) as info:
        transfer.import_json(store, raw)
    assert "UTF-8" in info.value.message or "not valid JSON" in info.value.message
    assert store.list_conversations() == []


def test_a_title_full_of_line_breaks_is_quoted_on_one_short_line_in_a_refusal(store: Store) -> None:
    doc = _doc(title="line one\nline two\r\n" + "x" * 900)
    doc["conversations"][0]["messages"][0]["parent_id"] = "nowhere"
    with pytest.raises(ImportRejected) as info:
        transfer.import_json(store, json.dumps(doc))
    assert "\n" not in info.value.message and "\r" not in info.value.message
    assert len(info.value.message) < 200
