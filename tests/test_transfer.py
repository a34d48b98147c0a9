"""Export to Markdown/JSON and import JSON: round trips losslessly, and bad files write nothing."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core import transfer
from app.core.settings import Sampling
from app.core.store import Store
from app.core.store_types import ImportRejected
from app.core.transfer import FORMAT_VERSION


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "source.db")
    yield s
    s.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Store]:
    s, _ = Store.open(tmp_path / "target.db")
    yield s
    s.close()


def _branchy(store: Store, title: str = "Branches") -> str:
    """A conversation with an edited question, a regenerated answer, stats, token ids and a partial answer."""
    conv = store.create_conversation(title=title, model_id="tinyllama", quant="Q4_K_M", chat_format="chatml",
                                     system_prompt="Be kind.\nAnd brief.", sampling=Sampling(seed=9))
    q = store.add_message(conv.id, None, "user", "What is *2+2*? é世🎉").id
    store.add_message(conv.id, q, "assistant", "4", prompt_tokens=10, completion_tokens=1, reused_tokens=0,
                      ttft_s=0.1, tokens_per_s=25.5, token_ids=[29946], model_id="tinyllama")
    a2 = store.add_message(conv.id, q, "assistant", "Four, and", status="partial").id
    store.add_message(conv.id, None, "user", "edited question")
    store.switch_branch(a2)
    store.set_pinned(conv.id, True)
    return conv.id


def _snapshot(store: Store) -> list[tuple[Any, ...]]:
    return [(c, store.messages(c.id)) for c in store.list_conversations(include_trashed=True)]


def test_json_round_trip_keeps_every_branch_field_and_the_current_leaf(store: Store, target: Store) -> None:
    cid = _branchy(store)
    _branchy(store, "Second")
    data = json.loads(json.dumps(transfer.export_json(store)))  # through real JSON text
    assert data["format"] == "tinychat-conversations" and data["version"] == FORMAT_VERSION
    summary = transfer.import_json(target, data)
    assert summary.conversations_added == 2 and summary.messages_added == 8
    for conv in store.list_conversations():
        got = target.get_conversation(conv.id)
        assert got.title == conv.title and got.sampling == conv.sampling and got.pinned
        assert got.current_leaf_id == conv.current_leaf_id
        assert got.created_at == pytest.approx(conv.created_at, abs=1e-5)
        mine = {m.id: m for m in store.messages(conv.id)}
        theirs = {m.id: m for m in target.messages(conv.id)}
        assert mine.keys() == theirs.keys()
        for mid, m in mine.items():
            t = theirs[mid]
            assert (t.parent_id, t.role, t.content, t.status, t.token_ids, t.prompt_tokens, t.tokens_per_s,
                    t.model_id) == (m.parent_id, m.role, m.content, m.status, m.token_ids, m.prompt_tokens,
                                    m.tokens_per_s, m.model_id)
    assert [m.content for m in target.active_branch(cid)] == ["What is *2+2*? é世🎉", "Four, and"]
    assert {h.conversation_id for h in target.search("edited")} == {c.id for c in store.list_conversations()}


def test_importing_the_same_file_twice_adds_nothing_the_second_time(store: Store, target: Store) -> None:
    _branchy(store)
    data = transfer.export_json(store)
    transfer.import_json(target, data)
    before = _snapshot(target)
    summary = transfer.import_json(target, json.dumps(data))
    assert summary.conversations_added == 0 and summary.skipped_titles == ("Branches",)
    assert "skipped 1 already present" in summary.describe()
    assert _snapshot(target) == before


def test_export_of_chosen_conversations_only(store: Store) -> None:
    a = _branchy(store, "A")
    _branchy(store, "B")
    data = transfer.export_json(store, [a])
    assert [c["title"] for c in data["conversations"]] == ["A"]


def test_markdown_shows_the_branch_on_screen_with_titles_roles_and_status(store: Store) -> None:
    _branchy(store, "Maths")
    text = transfer.export_markdown(store)
    assert text.startswith("# Maths\n")
    assert "Model tinyllama Q4_K_M" in text and "format chatml" in text
    assert "> Be kind.\n> And brief." in text
    assert "## You\n\nWhat is *2+2*? é世🎉" in text
    assert "## Assistant\n\nFour, and\n\n*(This answer was stopped before it finished.)*" in text
    assert "edited question" not in text and "\n4\n" not in text  # other branches are not shown


def test_markdown_separates_conversations(store: Store) -> None:
    _branchy(store, "One")
    _branchy(store, "Two")
    text = transfer.export_markdown(store)
    assert text.count("\n---\n") == 1 and "# One" in text and "# Two" in text


def _two_conversations(store: Store) -> dict[str, Any]:
    """An export of a good conversation followed by the one each breaker damages."""
    good = _branchy(store, "Good")
    victim = _branchy(store, "Victim")
    return transfer.export_json(store, [good, victim])


def _conv(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["conversations"][1]


def _msg(doc: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return _conv(doc)["messages"][i]


BREAKERS = {
    "wrong format name": lambda d: d.update(format="something-else"),
    "some other JSON file": lambda d: d.pop("format"),
    "newer version": lambda d: d.update(version=FORMAT_VERSION + 1),
    "version as text": lambda d: d.update(version="1"),
    "conversations not a list": lambda d: d.update(conversations={"a": 1}),
    "conversation not an object": lambda d: d["conversations"].append("hello"),
    "missing title": lambda d: _conv(d).pop("title"),
    "missing messages": lambda d: _conv(d).pop("messages"),
    "bad id characters": lambda d: _conv(d).update(id="../../etc/passwd"),
    "bad date": lambda d: _conv(d).update(created_at="yesterday"),
    "bad role": lambda d: _msg(d).update(role="root"),
    "bad status": lambda d: _msg(d).update(status="done"),
    "content not text": lambda d: _msg(d).update(content=["a"]),
    "huge token count": lambda d: _msg(d).update(prompt_tokens=10**30),
    "bool as number": lambda d: _msg(d).update(prompt_tokens=True),
    "token id out of range": lambda d: _msg(d).update(token_ids=[1, -5]),
    "unknown parent": lambda d: _msg(d, 1).update(parent_id="f" * 32),
    "duplicate message id": lambda d: _msg(d, 1).update(id=_msg(d, 0)["id"]),
    "message id of the other conversation":
        lambda d: _msg(d, 0).update(id=d["conversations"][0]["messages"][0]["id"]),
    "leaf outside conversation": lambda d: _conv(d).update(current_leaf_id="a" * 32),
    "parent loop": lambda d: _msg(d, 0).update(parent_id=_msg(d, 1)["id"]),
    "duplicate conversation id": lambda d: _conv(d).update(id=d["conversations"][0]["id"]),
    "title too long": lambda d: _conv(d).update(title="x" * 5000),
}
EXPECTED_WORDS = {
    "wrong format name": "not a TinyChat", "some other JSON file": "not a TinyChat",
    "newer version": "update TinyChat", "version as text": "“version”",
    "conversations not a list": "“conversations”", "conversation not an object": "conversation 3",
    "missing title": "lacks “title”", "missing messages": "lacks “messages”", "bad id characters": "valid id",
    "bad date": "not a date", "bad role": "“role”", "bad status": "“status”", "content not text": "“content”",
    "huge token count": "number too large", "bool as number": "“prompt_tokens”",
    "token id out of range": "token",
    "unknown parent": "not in the file", "duplicate message id": "twice",
    "message id of the other conversation": "not in the file", "leaf outside conversation": "does not contain",
    "parent loop": "loop", "duplicate conversation id": "twice", "title too long": "“title”",
}


@pytest.mark.parametrize("name", sorted(BREAKERS))
def test_a_malformed_export_is_rejected_with_a_sentence_and_writes_nothing(store: Store, target: Store,
                                                                           name: str) -> None:
    doc = _two_conversations(store)
    transfer.import_json(target, copy.deepcopy(doc))  # proves the undamaged file imports
    fresh, _ = Store.open(target.path.with_name("fresh.db"))
    BREAKERS[name](doc)
    with pytest.raises(ImportRejected) as info:
        transfer.import_json(fresh, json.dumps(doc))
    assert EXPECTED_WORDS[name] in info.value.message
    assert info.value.message.endswith(".") and len(info.value.message) < 300
    assert _snapshot(fresh) == []  # not even the good first conversation
    fresh.close()


@pytest.mark.parametrize("raw", [
    b"", b"not json at all", b"\xff\xfe\xfa", b"[" * 200_000 + b"]" * 200_000, b'{"a": NaN}',
    b'{"format": "tinychat-conversations", "format": "x"}', b"null", b'"just a string"', b"1" * 5000,
])
def test_garbage_and_hostile_json_is_rejected(target: Store, raw: bytes) -> None:
    with pytest.raises(ImportRejected):
        transfer.import_json(target, raw)
    assert _snapshot(target) == []


def test_a_file_whose_message_ids_clash_with_another_conversation_writes_nothing(store: Store,
                                                                                target: Store) -> None:
    _branchy(store)
    doc = transfer.export_json(store)
    transfer.import_json(target, doc)
    before = _snapshot(target)
    fresh = copy.deepcopy(doc["conversations"][0]) | {"id": "b" * 32, "title": "Copy"}
    other = copy.deepcopy(doc["conversations"][0]) | {"id": "c" * 32, "title": "New and fine"}
    for m in other["messages"]:
        m["id"] = m["id"][::-1]
        m["parent_id"] = m["parent_id"][::-1] if m["parent_id"] else None
    other["current_leaf_id"] = other["current_leaf_id"][::-1]
    doc["conversations"] = [other, fresh]
    with pytest.raises(ImportRejected) as info:
        transfer.import_json(target, doc)
    assert "Copy" in info.value.message
    assert _snapshot(target) == before
